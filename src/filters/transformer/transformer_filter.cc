#include "filters/transformer/transformer_filter.h"

#include <algorithm>

#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"
#include "filters/transformer/json_ops.h"
#include "flow/request_scope.h"
#include "http/header_list.h"
#include "http/url.h"

namespace portico::filters {
namespace {

using NamedTemplates = std::vector<std::pair<std::string, flow::StringTemplate>>;

// add / set / remove / rename on headers or query parameters; values are templates over the
// request and consumer.
struct NameValueOps {
  NamedTemplates add, set;
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> rename;
  bool empty() const { return add.empty() && set.empty() && remove.empty() && rename.empty(); }
};

NamedTemplates readTemplates(config::ObjectReader& r, std::string_view key,
                             config::Diagnostics& diag) {
  NamedTemplates out;
  const json* j = r.get(key);
  if (!j) return out;
  if (!j->is_object()) {
    diag.add(r.childPath(key), "must be a map of name: value");
    return out;
  }
  for (auto it = j->begin(); it != j->end(); ++it) {
    const std::string p = config::joinPath(r.childPath(key), it.key());
    const std::string text = it->is_string() ? it->get<std::string>() : it->dump();
    auto t = flow::StringTemplate::parse(text);
    if (!t) {
      diag.add(p, t.error().message);
      continue;
    }
    for (const auto& part : t->parts())
      if (const auto* ref = std::get_if<flow::Reference>(&part); ref && !flow::requestOnly(*ref))
        diag.add(p, "{" + ref->text + "}: only request.* and consumer.*");
    out.emplace_back(it.key(), std::move(*t));
  }
  return out;
}

void readNameValueOps(config::ObjectReader& parent, std::string_view key, config::Diagnostics& diag,
                      NameValueOps& ops) {
  const json* node = parent.get(key);
  if (!node) return;
  config::ObjectReader r(*node, parent.childPath(key), diag);
  ops.add = readTemplates(r, "add", diag);
  ops.set = readTemplates(r, "set", diag);
  r.stringList("remove", ops.remove);
  if (const json* rn = r.get("rename")) {
    if (!rn->is_object()) {
      diag.add(r.childPath("rename"), "must be a map of old: new");
    } else {
      for (auto it = rn->begin(); it != rn->end(); ++it) {
        if (!it->is_string() || it->get<std::string>().empty()) {
          diag.add(config::joinPath(r.childPath("rename"), it.key()), "must be a name");
          continue;
        }
        ops.rename.emplace_back(it.key(), it->get<std::string>());
      }
    }
  }
  r.finish();
}

void applyHeaderOps(const NameValueOps& ops, http::HeaderList& headers, const flow::Scope& scope) {
  for (const auto& name : ops.remove) headers.remove(name);
  for (const auto& [from, to] : ops.rename) {
    if (const std::string* v = headers.find(from)) {
      const std::string value = *v;
      headers.remove(from);
      headers.set(to, value);
    }
  }
  for (const auto& [name, t] : ops.set) {
    const std::string v = t.renderText(scope);
    if (http::isSafeFieldValue(v))
      headers.set(name, v);  // CR, LF or NUL from a template: never sent
  }
  for (const auto& [name, t] : ops.add) {
    const std::string v = t.renderText(scope);
    if (http::isSafeFieldValue(v)) headers.add(name, v);
  }
}

// Query parameters as decoded pairs, edited, then written back percent-encoded.
std::string applyQueryOps(const NameValueOps& ops, std::string_view query,
                          const flow::Scope& scope) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      params.emplace_back(
          http::decodeQueryComponent(pair.substr(0, eq)),
          eq == std::string_view::npos ? "" : http::decodeQueryComponent(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  auto drop = [&](const std::string& name) {
    std::erase_if(params, [&](const auto& p) { return p.first == name; });
  };
  for (const auto& name : ops.remove) drop(name);
  for (const auto& [from, to] : ops.rename)
    for (auto& p : params)
      if (p.first == from) p.first = to;
  for (const auto& [name, t] : ops.set) {
    const json v = t.render(scope);
    drop(name);
    if (!v.is_null()) params.emplace_back(name, flow::toText(v));
  }
  for (const auto& [name, t] : ops.add) {
    const json v = t.render(scope);
    if (!v.is_null()) params.emplace_back(name, flow::toText(v));
  }
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += http::encodeQueryComponent(k) + "=" + http::encodeQueryComponent(v);
  }
  return out;
}

struct BodyOps {
  std::vector<JsonOp> json;
  bool strict = false;
  std::uint64_t max_buffer = api::BufferedBodyTransform::kDefaultMaxBuffer;
};

// The json ops on a whole body. A body that is not JSON passes unchanged (counted), unless
// strict: then the transform fails (502 for a response, 400 for a request).
class JsonBodyTransform final : public api::BufferedBodyTransform {
 public:
  JsonBodyTransform(std::string_view filter, const BodyOps& ops, const api::RequestContext& ctx)
      : BufferedBodyTransform(ops.max_buffer), filter_(filter), ops_(ops), ctx_(ctx) {}
  std::string_view name() const override { return filter_; }

 protected:
  bool transformWhole(std::string& body, std::string& error) override {
    std::string out;
    if (!transformJson(ops_.json, body, flow::RequestScope(ctx_, nullptr), out)) {
      if (ops_.strict) {
        error = "body is not JSON";
        return false;
      }
      if (ctx_.worker) ctx_.worker->countFilterEvent(filter_, "not_json");
      return true;
    }
    body.swap(out);
    return true;
  }

 private:
  std::string_view filter_;
  const BodyOps& ops_;
  const api::RequestContext& ctx_;
};

void readBodyOps(config::ObjectReader& r, config::Diagnostics& diag, BodyOps& ops) {
  if (const json* j = r.get("json")) ops.json = readJsonOps(*j, r.childPath("json"), diag);
  r.boolean("strict", ops.strict);
  r.size("max_buffer", ops.max_buffer);
}

// ---- response-transformer ----

struct ResponseTransformerConfig {
  std::vector<std::pair<int, int>> status;  // from -> to
  NameValueOps headers;
  BodyOps body;
  std::vector<int> when_status;
  std::string when_content_type;  // a prefix, case-insensitive
};

class ResponseTransformer final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit ResponseTransformer(const ResponseTransformerConfig& c) : c_(c) {}

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    http::ResponseHead* resp = ctx.response;
    if (!resp || !applies(*resp)) return api::FilterStatus::Continue;
    for (const auto& [from, to] : c_.status)
      if (resp->status == from) {
        resp->status = to;
        break;
      }
    const bool json_body =
        http::hasJsonContentType(resp->headers);  // as the upstream said, before edits
    applyHeaderOps(c_.headers, resp->headers, flow::RequestScope(ctx, nullptr));
    const bool has_body = resp->status >= 200 && resp->status != 204 && resp->status != 304 &&
                          !(ctx.request && ctx.request->method == "HEAD");
    if (!c_.body.json.empty() && has_body) {
      if (c_.body.strict || json_body) {
        ctx.transformResponseBody(
            std::make_unique<JsonBodyTransform>("response-transformer", c_.body, ctx));
      } else if (ctx.worker) {
        ctx.worker->countFilterEvent("response-transformer", "not_json");
      }
    }
    return api::FilterStatus::Continue;
  }

 private:
  bool applies(const http::ResponseHead& resp) const {
    if (!c_.when_status.empty() && std::find(c_.when_status.begin(), c_.when_status.end(),
                                             resp.status) == c_.when_status.end())
      return false;
    if (c_.when_content_type.empty()) return true;
    const std::string* type = resp.headers.find("content-type");
    return type && type->size() >= c_.when_content_type.size() &&
           http::equalsIgnoreCase(std::string_view(*type).substr(0, c_.when_content_type.size()),
                                  c_.when_content_type);
  }

  const ResponseTransformerConfig& c_;
};

// ---- request-transformer ----

struct RequestTransformerConfig {
  NameValueOps headers;
  NameValueOps query;
  std::optional<flow::StringTemplate> path;
  std::string method;
  BodyOps body;
};

// What the path template must give: an origin-form path, without query or fragment.
bool isValidPath(std::string_view path) {
  return !path.empty() && path.front() == '/' && http::isSafeFieldValue(path) &&
         path.find_first_of(" ?#") == std::string_view::npos;
}

class RequestTransformer final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit RequestTransformer(const RequestTransformerConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    http::RequestHead& req = *ctx.request;
    const flow::RequestScope scope(ctx, nullptr);
    // Templates see the request as it came: render everything before changing anything.
    std::optional<std::string> path;
    if (c_.path) {
      // Values are percent-encoded (a `/`, space or `?` in one stays in its segment); the
      // template's own text was checked when the config loaded. What is left to refuse is a
      // value that is all dots: `/v2/..` climbs out of where the template put it.
      path = c_.path->renderText(scope, true);
      if (http::hasDotSegment(*path))
        return replyError(ctx, 400,
                          "request-transformer: the request gave a value the path "
                          "cannot hold");
    }
    std::string query = c_.query.empty() ? req.query : applyQueryOps(c_.query, req.query, scope);
    const bool json_body = http::hasJsonContentType(req.headers);
    applyHeaderOps(c_.headers, req.headers, scope);
    if (!c_.method.empty()) req.method = c_.method;
    if (path) req.path = std::move(*path);
    req.query = std::move(query);
    req.target = req.query.empty() ? req.path : req.path + "?" + req.query;
    if (!c_.body.json.empty() && req.framing != http::BodyFraming::None) {
      if (json_body) {
        ctx.transformRequestBody(
            std::make_unique<JsonBodyTransform>("request-transformer", c_.body, ctx));
      } else if (c_.body.strict) {
        return replyError(ctx, 415, "request body must be JSON");
      } else if (ctx.worker) {
        ctx.worker->countFilterEvent("request-transformer", "not_json");
      }
    }
    return api::FilterStatus::Continue;
  }

 private:
  const RequestTransformerConfig& c_;
};

}  // namespace

api::FilterType responseTransformerFilterType() {
  return {"response-transformer",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            ResponseTransformerConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            if (const json* s = r.get("status")) {
              if (!s->is_object()) b.diag.add(r.childPath("status"), "must be a map \"404\": 200");
              for (auto it = s->begin(); s->is_object() && it != s->end(); ++it) {
                int from = 0;
                try {
                  from = std::stoi(it.key());
                } catch (...) {
                }
                const int to = it->is_number_integer() ? it->get<int>() : 0;
                if (from < 100 || from > 599 || to < 100 || to > 599)
                  b.diag.add(config::joinPath(r.childPath("status"), it.key()),
                             "statuses are 100 to 599");
                c.status.emplace_back(from, to);
              }
            }
            readNameValueOps(r, "headers", b.diag, c.headers);
            readBodyOps(r, b.diag, c.body);
            if (const json* w = r.get("when")) {
              config::ObjectReader wr(*w, r.childPath("when"), b.diag);
              if (const json* st = wr.get("status")) {
                if (!st->is_array()) b.diag.add(wr.childPath("status"), "must be a list");
                for (const auto& v : *st)
                  if (v.is_number_integer()) c.when_status.push_back(v.get<int>());
              }
              wr.string("content_type", c.when_content_type);
              wr.finish();
            }
            r.finish();
            return std::make_shared<ConfigFactory<ResponseTransformer, ResponseTransformerConfig>>(
                std::move(c));
          }};
}

api::FilterType requestTransformerFilterType() {
  return {"request-transformer",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            RequestTransformerConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            readNameValueOps(r, "headers", b.diag, c.headers);
            readNameValueOps(r, "query", b.diag, c.query);
            if (const json* p = r.get("path")) {
              auto t = p->is_string() ? flow::StringTemplate::parse(p->get<std::string>())
                                      : Result<flow::StringTemplate>(makeError("must be a string"));
              if (!t) {
                b.diag.add(r.childPath("path"), t.error().message);
              } else {
                bool literal_ok = !t->empty();
                for (const auto& part : t->parts()) {
                  if (const auto* ref = std::get_if<flow::Reference>(&part);
                      ref && !flow::requestOnly(*ref))
                    b.diag.add(r.childPath("path"),
                               "{" + ref->text + "}: only request.* and consumer.*");
                  // The literal text is checked here, whatever the references give: a `/`
                  // where it starts the path, no space, query or fragment.
                  if (const auto* text = std::get_if<std::string>(&part))
                    literal_ok &= isValidPath(&part == &t->parts().front() ? *text : "/" + *text);
                }
                literal_ok &= !t->writesDotSegment();
                if (!literal_ok)
                  b.diag.add(r.childPath("path"),
                             "must give a path: start with /, no space, ? or #, no . or .. "
                             "segment (the query has its own ops)");
                c.path = std::move(*t);
              }
            }
            r.string("method", c.method);
            std::transform(c.method.begin(), c.method.end(), c.method.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
            readBodyOps(r, b.diag, c.body);
            r.finish();
            return std::make_shared<ConfigFactory<RequestTransformer, RequestTransformerConfig>>(
                std::move(c));
          }};
}

}  // namespace portico::filters
