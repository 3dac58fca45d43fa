#include "filters/transformer/json_ops.h"

#include "config/reader.h"
#include "flow/request_scope.h"

namespace portico::filters {
namespace {

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
      const std::size_t k = op.from.wildcardEnd();
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

}  // namespace portico::filters
