#include "filters/transformer/json_ops.h"

#include "config/reader.h"
#include "flow/request_scope.h"

namespace portico::filters {
namespace {

using Tokens = std::vector<std::string>;

bool parsePointer(const json& node, const std::string& path, config::Diagnostics& diag,
                  JsonPointer& out) {
  if (!node.is_string() || node.get<std::string>().empty() ||
      node.get<std::string>().front() != '/') {
    diag.add(path, "must be a JSON Pointer such as /a/b (* for every element)");
    return false;
  }
  out.text = node.get<std::string>();
  out.tokens.clear();
  std::string token;
  for (std::size_t i = 1; i <= out.text.size(); ++i) {
    if (i == out.text.size() || out.text[i] == '/') {
      out.tokens.push_back(std::move(token));
      token.clear();
    } else if (out.text[i] == '~' && i + 1 < out.text.size() &&
               (out.text[i + 1] == '0' || out.text[i + 1] == '1')) {
      token.push_back(out.text[i + 1] == '0' ? '~' : '/');
      ++i;
    } else {
      token.push_back(out.text[i]);
    }
  }
  return true;
}

std::optional<std::size_t> arrayIndex(const std::string& token, std::size_t size) {
  if (token.empty() || token.size() > 9) return std::nullopt;
  std::size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n >= size) return std::nullopt;
  return n;
}

// Calls `f` on every node that tokens [i, end) lead to from `node`; `*` fans out. With
// `create`, missing object members on the way are made (never through `*`).
template <class F>
void visit(json& node, const Tokens& t, std::size_t i, std::size_t end, bool create, F& f) {
  if (i == end) {
    f(node);
    return;
  }
  const std::string& tok = t[i];
  if (tok == "*") {
    if (node.is_array() || node.is_object())
      for (auto& child : node) visit(child, t, i + 1, end, create, f);
    return;
  }
  if (node.is_null() && create) node = json::object();
  if (node.is_object()) {
    auto it = node.find(tok);
    if (it != node.end()) {
      visit(*it, t, i + 1, end, create, f);
    } else if (create) {
      json& child = node[tok];
      child = json::object();
      visit(child, t, i + 1, end, create, f);
    }
  } else if (node.is_array()) {
    if (auto idx = arrayIndex(tok, node.size())) visit(node[*idx], t, i + 1, end, create, f);
  }
}

json* child(json& parent, const std::string& tok) {
  if (parent.is_object()) {
    auto it = parent.find(tok);
    return it == parent.end() ? nullptr : &*it;
  }
  if (parent.is_array()) {
    if (auto idx = arrayIndex(tok, parent.size())) return &parent[*idx];
  }
  return nullptr;
}

void eraseChild(json& parent, const std::string& tok) {
  if (tok == "*") {
    if (parent.is_object() || parent.is_array()) parent.clear();
  } else if (parent.is_object()) {
    parent.erase(tok);
  } else if (parent.is_array()) {
    if (auto idx = arrayIndex(tok, parent.size())) parent.erase(*idx);
  }
}

void setChild(json& parent, const std::string& tok, const json& value, bool only_if_missing) {
  if (tok == "*") {
    if (parent.is_array() || parent.is_object())
      for (auto& c : parent)
        if (!only_if_missing || c.is_null()) c = value;
    return;
  }
  if (parent.is_null()) parent = json::object();
  if (parent.is_object()) {
    if (!only_if_missing || !parent.contains(tok)) parent[tok] = value;
  } else if (parent.is_array()) {
    if (tok == "-") {
      parent.push_back(value);
    } else if (auto idx = arrayIndex(tok, parent.size()); idx && !only_if_missing) {
      parent[*idx] = value;
    }
  }
}

// Tokens from `k` on, from `base`: the value there, or null when absent.
json* findFrom(json& base, const Tokens& t, std::size_t k) {
  json* v = &base;
  for (std::size_t i = k; i < t.size() && v; ++i) v = child(*v, t[i]);
  return v;
}

void setFrom(json& base, const Tokens& t, std::size_t k, const json& value) {
  auto set = [&](json& parent) { setChild(parent, t.back(), value, false); };
  visit(base, t, k, t.size() - 1, true, set);
}

void eraseFrom(json& base, const Tokens& t, std::size_t k) {
  auto erase = [&](json& parent) { eraseChild(parent, t.back()); };
  visit(base, t, k, t.size() - 1, false, erase);
}

// Where the wildcard part of a move/copy ends: after the last `*` of `from`.
std::size_t wildcardPrefix(const Tokens& from) {
  for (std::size_t i = from.size(); i-- > 0;)
    if (from[i] == "*") return i + 1;
  return 0;
}

void prune(json& v, const AllowTree& tree) {
  if (tree.keep) return;
  auto pick = [&](const std::string& key) -> const AllowTree* {
    auto it = tree.children.find(key);
    if (it != tree.children.end()) return &it->second;
    it = tree.children.find("*");
    return it == tree.children.end() ? nullptr : &it->second;
  };
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (const AllowTree* t = pick(it.key())) {
        prune(*it, *t);
        ++it;
      } else {
        it = v.erase(it);
      }
    }
  } else if (v.is_array()) {
    for (std::size_t i = v.size(); i-- > 0;) {
      if (const AllowTree* t = pick(std::to_string(i))) {
        prune(v[i], *t);
      } else {
        v.erase(i);
      }
    }
  }
}

}  // namespace

std::vector<JsonOp> readJsonOps(const json& ops, const std::string& path,
                                config::Diagnostics& diag) {
  std::vector<JsonOp> out;
  if (!ops.is_array()) {
    diag.add(path, "must be a list of {op, ...}");
    return out;
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::string p = config::indexPath(path, i);
    const std::size_t errors_before = diag.items().size();
    config::ObjectReader r(ops[i], p, diag);
    std::string kind;
    r.string("op", kind, true);
    JsonOp op;
    auto pointer = [&](std::string_view key, JsonPointer& ptr) {
      if (const json* j = r.require(key)) parsePointer(*j, r.childPath(key), diag, ptr);
    };
    auto value = [&] {
      const json* j = r.require("value");
      if (!j) return;
      auto t = flow::JsonTemplate::parse(*j);
      if (!t) {
        diag.add(r.childPath("value"), t.error().message);
        return;
      }
      t->forEachReference([&](const flow::Reference& ref) {
        if (!flow::requestOnly(ref))
          diag.add(r.childPath("value"), "{" + ref.text + "}: only request.* and consumer.*");
      });
      op.value = std::move(*t);
    };
    if (kind == "remove" || kind == "set" || kind == "default") {
      op.kind = kind == "remove" ? JsonOp::Kind::Remove
                : kind == "set"  ? JsonOp::Kind::Set
                                 : JsonOp::Kind::Default;
      pointer("path", op.path);
      if (op.kind != JsonOp::Kind::Remove) value();
    } else if (kind == "rename" || kind == "copy" || kind == "move") {
      op.kind = kind == "rename" ? JsonOp::Kind::Rename
                : kind == "copy" ? JsonOp::Kind::Copy
                                 : JsonOp::Kind::Move;
      pointer("from", op.from);
      pointer("to", op.to);
      const std::size_t k = wildcardPrefix(op.from.tokens);
      const bool same_prefix =
          op.to.tokens.size() > k &&
          std::equal(op.from.tokens.begin(), op.from.tokens.begin() + static_cast<long>(k),
                     op.to.tokens.begin());
      bool later_star = false;
      for (std::size_t t = k; t < op.to.tokens.size(); ++t) later_star |= op.to.tokens[t] == "*";
      if (!op.from.tokens.empty() && op.from.tokens.back() == "*")
        diag.add(r.childPath("from"), "must name a field, not every element");
      else if (!op.to.tokens.empty() && (!same_prefix || later_star))
        diag.add(r.childPath("to"), "must keep from's path up to its last * (" + op.from.text +
                                        " -> " + op.to.text + ")");
    } else if (kind == "allow") {
      op.kind = JsonOp::Kind::Allow;
      const json* list = r.require("paths");
      if (list && (!list->is_array() || list->empty())) {
        diag.add(r.childPath("paths"), "must be a list of JSON Pointers");
      } else if (list) {
        for (std::size_t j = 0; j < list->size(); ++j) {
          JsonPointer ptr;
          if (!parsePointer((*list)[j], config::indexPath(r.childPath("paths"), j), diag, ptr))
            continue;
          AllowTree* t = &op.allow_tree;
          for (const auto& tok : ptr.tokens) t = &t->children[tok];
          t->keep = true;
          op.allow.push_back(std::move(ptr));
        }
      }
    } else if (!kind.empty()) {
      diag.add(r.childPath("op"),
               "unknown op \"" + kind + "\" (remove, rename, set, copy, move, default, allow)");
    }
    r.finish();
    if (diag.items().size() == errors_before) out.push_back(std::move(op));  // only whole ops
  }
  return out;
}

void applyJsonOps(const std::vector<JsonOp>& ops, json& doc, const flow::Scope& scope) {
  for (const JsonOp& op : ops) {
    switch (op.kind) {
      case JsonOp::Kind::Remove:
        eraseFrom(doc, op.path.tokens, 0);
        break;
      case JsonOp::Kind::Set:
      case JsonOp::Kind::Default: {
        const json v = op.value->render(scope);
        const bool only_if_missing = op.kind == JsonOp::Kind::Default;
        auto set = [&](json& parent) {
          setChild(parent, op.path.tokens.back(), v, only_if_missing);
        };
        visit(doc, op.path.tokens, 0, op.path.tokens.size() - 1, true, set);
        break;
      }
      case JsonOp::Kind::Rename:
      case JsonOp::Kind::Move:
      case JsonOp::Kind::Copy: {
        const std::size_t k = wildcardPrefix(op.from.tokens);
        auto one = [&](json& base) {
          json* src = findFrom(base, op.from.tokens, k);
          if (!src) return;
          json v = op.kind == JsonOp::Kind::Copy ? *src : std::move(*src);
          if (op.kind != JsonOp::Kind::Copy) eraseFrom(base, op.from.tokens, k);
          setFrom(base, op.to.tokens, k, v);
        };
        visit(doc, op.from.tokens, 0, k, false, one);
        break;
      }
      case JsonOp::Kind::Allow:
        prune(doc, op.allow_tree);
        break;
    }
  }
}

}  // namespace portico::filters
