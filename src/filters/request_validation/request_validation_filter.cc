#include "filters/request_validation/request_validation_filter.h"

#include <fstream>
#include <sstream>

#include "api/worker_services.h"
#include "config/reader.h"
#include "core/json_escape.h"
#include "filters/config_factory.h"
#include "filters/request_validation/json_schema.h"
#include "http/header_list.h"
#include "http/url.h"

namespace portico::filters {
namespace {

// One query parameter or header and its schema. Their values are text: when the schema asks
// for a number, an integer or a boolean, text that reads as one is checked as one (as OpenAPI
// parameters are).
struct Parameter {
  std::string name;
  bool required = false;
  JsonSchema schema;
  std::string type;  // the schema's "type" when it is one string, else ""
};

struct ValidationConfig {
  std::optional<JsonSchema> body;
  std::vector<Parameter> query;
  std::vector<Parameter> headers;
  int status = 400;
  std::uint64_t max_body = 1024 * 1024;
};

struct Failure {
  std::string_view in;  // "query", "header", "body"
  std::string name;     // the parameter or header; empty for the body
  SchemaViolation violation;
};

nlohmann::json typed(const std::string& text, const std::string& type) {
  if (type == "integer" || type == "number" || type == "boolean") {
    const nlohmann::json v = nlohmann::json::parse(text, nullptr, false);
    if (!v.is_discarded() && (v.is_number() || v.is_boolean())) return v;
  }
  return text;
}

// The problem document (RFC 9457) for `failures`, with the request id.
void problemReply(api::RequestContext& ctx, int status, const std::vector<Failure>& failures) {
  auto& reply = ctx.local_reply;
  reply = api::LocalReply{};
  reply.status = status;
  reply.headers.add("Content-Type", "application/problem+json");
  std::string& b = reply.body;
  b = "{\"type\":\"about:blank\",\"title\":\"Request validation failed\",\"status\":" +
      std::to_string(status) + ",\"detail\":";
  appendJsonString(
      b, std::to_string(failures.size()) + (failures.size() == 1 ? " failure" : " failures"));
  b += ",\"request_id\":";
  appendJsonString(b, ctx.request_id);
  b += ",\"errors\":[";
  for (std::size_t i = 0; i < failures.size(); ++i) {
    const Failure& f = failures[i];
    if (i) b += ',';
    b += "{\"in\":";
    appendJsonString(b, f.in);
    if (!f.name.empty()) {
      b += ",\"name\":";
      appendJsonString(b, f.name);
    }
    b += ",\"pointer\":";
    appendJsonString(b, f.violation.pointer);
    b += ",\"detail\":";
    appendJsonString(b, f.violation.message);
    b += '}';
  }
  b += "]}";
  ctx.error = "request validation failed";
}

// The body, whole, checked against the schema; passed on unchanged when valid.
class ValidateBody final : public api::BufferedBodyTransform {
 public:
  ValidateBody(const ValidationConfig& c, api::RequestContext& ctx)
      : BufferedBodyTransform(c.max_body), c_(c), ctx_(ctx) {}
  std::string_view name() const override { return "request-validation"; }

 protected:
  bool transformWhole(std::string& body, std::string& error) override {
    std::vector<SchemaViolation> violations;
    if (c_.body->validateText(body, violations)) return true;
    std::vector<Failure> failures;
    for (auto& v : violations) failures.push_back({"body", "", std::move(v)});
    problemReply(ctx_, c_.status, failures);
    ctx_.local_reply_set = true;
    error = "request validation failed";
    if (ctx_.worker) ctx_.worker->countFilterEvent("request-validation", "refused");
    return false;
  }

 private:
  const ValidationConfig& c_;
  api::RequestContext& ctx_;
};

class RequestValidationFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit RequestValidationFilter(const ValidationConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    std::vector<Failure> failures;
    const http::RequestHead& req = *ctx.request;
    for (const Parameter& p : c_.query) {
      const auto found = http::findQueryParam(req.query, p.name);
      if (!found.found) {
        if (p.required) failures.push_back({"query", p.name, {"", "is required"}});
        continue;
      }
      const std::string text = http::decodeQueryComponent(found.value);
      std::vector<SchemaViolation> v;
      if (!p.schema.validate(typed(text, p.type), v))
        for (auto& one : v) failures.push_back({"query", p.name, std::move(one)});
    }
    for (const Parameter& p : c_.headers) {
      const std::string* value = req.headers.find(p.name);
      if (!value) {
        if (p.required) failures.push_back({"header", p.name, {"", "is required"}});
        continue;
      }
      std::vector<SchemaViolation> v;
      if (!p.schema.validate(typed(*value, p.type), v))
        for (auto& one : v) failures.push_back({"header", p.name, std::move(one)});
    }
    if (!failures.empty()) {
      problemReply(ctx, c_.status, failures);
      if (ctx.worker) ctx.worker->countFilterEvent("request-validation", "refused");
      return api::FilterStatus::Reply;
    }
    if (c_.body) {
      if (req.framing == http::BodyFraming::None) {
        std::vector<SchemaViolation> v;
        if (!c_.body->validateText("null", v)) {
          problemReply(ctx, c_.status, {{"body", "", {"", "a JSON body is required"}}});
          return api::FilterStatus::Reply;
        }
      } else {
        ctx.transformRequestBody(std::make_unique<ValidateBody>(c_, ctx));
      }
    }
    return api::FilterStatus::Continue;
  }

 private:
  const ValidationConfig& c_;
};

// A schema from an inline object or a file (a string: its path).
std::optional<JsonSchema> readSchema(const nlohmann::json& node, const std::string& path,
                                     config::Diagnostics& diag) {
  nlohmann::json schema = node;
  if (node.is_string()) {
    std::ifstream file(node.get<std::string>());
    if (!file) {
      diag.add(path, "cannot read schema file " + node.get<std::string>());
      return std::nullopt;
    }
    std::stringstream text;
    text << file.rdbuf();
    schema = nlohmann::json::parse(text.str(), nullptr, false);
    if (schema.is_discarded()) {
      diag.add(path, "schema file " + node.get<std::string>() + " is not JSON");
      return std::nullopt;
    }
  }
  if (!schema.is_object() && !schema.is_boolean()) {
    diag.add(path, "must be a JSON Schema (an object) or the path of a file holding one");
    return std::nullopt;
  }
  auto compiled = JsonSchema::compile(schema);
  if (!compiled) {
    diag.add(path, compiled.error().message);
    return std::nullopt;
  }
  return std::move(*compiled);
}

void readParameters(config::ObjectReader& r, std::string_view key, config::Diagnostics& diag,
                    std::vector<Parameter>& out) {
  const nlohmann::json* node = r.get(key);
  if (!node) return;
  if (!node->is_object()) {
    diag.add(r.childPath(key), "must be a map of name: schema");
    return;
  }
  for (auto it = node->begin(); it != node->end(); ++it) {
    const std::string path = config::joinPath(r.childPath(key), it.key());
    if (!it->is_object()) {
      diag.add(path, "must be a JSON Schema (an object)");
      continue;
    }
    nlohmann::json schema = *it;
    Parameter p;
    p.name = it.key();
    if (auto req = schema.find("required"); req != schema.end() && req->is_boolean()) {
      p.required = req->get<bool>();  // OpenAPI's parameter flag, not a schema keyword here
      schema.erase(req);
    }
    if (auto type = schema.find("type"); type != schema.end() && type->is_string())
      p.type = type->get<std::string>();
    auto compiled = readSchema(schema, path, diag);
    if (!compiled) continue;
    p.schema = std::move(*compiled);
    out.push_back(std::move(p));
  }
}

}  // namespace

api::FilterType requestValidationFilterType() {
  return {"request-validation",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            ValidationConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            if (const nlohmann::json* body = r.get("body_schema"))
              c.body = readSchema(*body, r.childPath("body_schema"), b.diag);
            readParameters(r, "query", b.diag, c.query);
            readParameters(r, "headers", b.diag, c.headers);
            r.number("status", 400, 499, c.status);
            r.size("max_body", c.max_body);
            r.finish();
            if (!r.has("body_schema") && !r.has("query") && !r.has("headers"))
              b.diag.add(b.path, "needs body_schema, query or headers");
            return std::make_shared<ConfigFactory<RequestValidationFilter, ValidationConfig>>(
                std::move(c));
          }};
}

}  // namespace portico::filters
