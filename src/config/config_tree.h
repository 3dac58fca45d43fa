#pragma once
// The source document as a JSON tree, with the source position of every node and `${ENV}`
// already substituted. YAML and JSON files both land here. JSON (a document starting with '{')
// takes a fast path: parsed by nlohmann::json, positions computed only when an error is
// reported (a 100,000-consumer file loads in well under a second).
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "config/diagnostics.h"

namespace portico::config {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Reads the process environment.
EnvLookup processEnvironment();

struct ConfigTree {
  nlohmann::json root;
  // By key path, e.g. "routes[3].upstream" (the value) and "routes[3].upstream#key" (the key).
  Diagnostics::LocationMap locations;
  std::unordered_set<std::string> secrets;  // key paths whose value came from ${ENV}
  std::string json_source;  // JSON input is kept to find locations only if an error needs them
};

// Parses `text` (named `file` in messages) into `tree`, and points `diag` at its locations.
// Syntax errors, duplicate keys and unset environment variables are added to `diag`; the tree
// holds whatever could be read.
void parseConfigText(const std::string& text, const std::string& file, const EnvLookup& env,
                     ConfigTree& tree, Diagnostics& diag);

// The tree as JSON with every secret value replaced by "<redacted>".
nlohmann::json redacted(const ConfigTree& tree);
// The same, taking the tree's root instead of copying it (the tree is done with).
nlohmann::json redacted(ConfigTree&& tree);

}  // namespace portico::config

namespace portico::config {

// `value` as a YAML document (block style; strings quoted where YAML would read them otherwise).
std::string toYaml(const nlohmann::json& value);

// `value` with every literal "${" in its strings written "$${": what the config text readers
// (a file, a document POSTed to the Admin API) take back as the same value, not as an
// environment variable. The Admin API's JSON export is written so; toYaml does it itself.
nlohmann::json escapeSubstitutions(nlohmann::json value);

}  // namespace portico::config
