#pragma once
// The JSON edits of request-transformer and response-transformer: remove, rename, set, copy,
// move, default and allow, on JSON Pointers where `*` stands for every element of an array (or
// every member of an object). Compiled at config load; applied in order to a parsed body.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/diagnostics.h"
#include "flow/template.h"

namespace portico::filters {

using json = nlohmann::json;

struct JsonPointer {
  std::vector<std::string> tokens;  // unescaped; "*" = every element
  std::string text;
};

// The paths an `allow` op keeps, as a tree of tokens (a node marked keep keeps all below it).
struct AllowTree {
  bool keep = false;
  std::map<std::string, AllowTree> children;
};

struct JsonOp {
  enum class Kind { Remove, Rename, Set, Copy, Move, Default, Allow };
  Kind kind = Kind::Remove;
  JsonPointer path;  // remove, set, default
  JsonPointer from, to;
  std::optional<flow::JsonTemplate> value;  // set, default (request.*, consumer.* allowed)
  std::vector<JsonPointer> allow;
  AllowTree allow_tree;  // built from `allow` at load
};

// Reads `ops` (a list) at `path`; errors go to `diag`.
std::vector<JsonOp> readJsonOps(const json& ops, const std::string& path,
                                config::Diagnostics& diag);

// Applies `ops` to `doc` in order; template values resolve against `scope`.
void applyJsonOps(const std::vector<JsonOp>& ops, json& doc, const flow::Scope& scope);

}  // namespace portico::filters
