#pragma once
// Config tree -> model, with strict keys and every error reported, then the whole-config
// checks (unique names, references between sections) that need all of it.
#include "config/config_tree.h"
#include "config/model.h"

namespace portico::config {

Config parseModel(const nlohmann::json& root, Diagnostics& diag);

// A `tls` block for a connection Portico opens (upstreams, Redis): ca, server_name, verify,
// client_cert, client_key.
UpstreamTlsConfig parseClientTls(const nlohmann::json& node, const std::string& path,
                                 Diagnostics& d);

}  // namespace portico::config
