#pragma once
// Config tree -> model, with strict keys and every error reported, then the whole-config
// checks (unique names, references between sections) that need all of it.
#include <functional>

#include "config/config_tree.h"
#include "config/model.h"

namespace portico::config {

// For a route's name, an already parsed route whose source is known to be the same (the
// previous snapshot's, when a store changed other objects), or null to parse it.
using RouteReuse = std::function<const RouteConfig*(const std::string& name)>;

// Entity lists kept outside the document (a store's entity set), by section name ("routes",
// ...): parsed as if the document listed them, in order, without copying 10,000 routes into one
// document per write. A section given here is not read from the document.
using ExternalSections = std::vector<std::pair<std::string, std::vector<const nlohmann::json*>>>;

Config parseModel(const nlohmann::json& root, Diagnostics& diag, const RouteReuse& reuse = nullptr,
                  const ExternalSections* sections = nullptr);

// A `tls` block for a connection Portico opens (upstreams, Redis): ca, server_name, verify,
// client_cert, client_key.
UpstreamTlsConfig parseClientTls(const nlohmann::json& node, const std::string& path,
                                 Diagnostics& d);

}  // namespace portico::config
