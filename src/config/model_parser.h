#pragma once
// Config tree -> model, with strict keys and every error reported, then the whole-config
// checks (unique names, references between sections) that need all of it.
#include "config/config_tree.h"
#include "config/model.h"

namespace portico::config {

Config parseModel(const nlohmann::json& root, Diagnostics& diag);

}  // namespace portico::config
