#pragma once
// The JSON edits of request-transformer and response-transformer: remove, rename, set, copy,
// move, default and allow, on JSON Pointers where `*` stands for every element of an array (or
// every member of an object). Compiled at config load (json_ops.cc); applied in order to a body
// (json_edit.cc).
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

  // Where the wildcard part ends: after the last `*` (0 without one). A move/copy is done once
  // per place that part leads to.
  std::size_t wildcardEnd() const {
    for (std::size_t i = tokens.size(); i-- > 0;)
      if (tokens[i] == "*") return i + 1;
    return 0;
  }
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

// Parses `body` as JSON, applies `ops` in order (template values resolve against `scope`) and
// appends the result to `out`: keys keep their order, the rest is written compactly. Returns
// false, leaving `out` alone, when `body` is not JSON. May grow `body`'s capacity (the parser
// reads a little past the end).
bool transformJson(const std::vector<JsonOp>& ops, std::string& body, const flow::Scope& scope,
                   std::string& out);

}  // namespace portico::filters
