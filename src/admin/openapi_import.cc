#include "admin/openapi_import.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/json_field.h"
#include "http/url.h"

namespace portico::admin {

using nlohmann::json;

namespace {

constexpr std::array<const char*, 7> kMethods = {"get",   "put",  "post",   "delete",
                                                 "patch", "head", "options"};
constexpr int kMaxRefDepth = 32;
// Values one path item may inline to. A schema that refers to itself twice (a binary tree's
// left and right) doubles at each of the 32 levels: 2^32 values, where real specs inline to
// thousands.
constexpr std::size_t kMaxInlined = 250'000;

// The node a local reference ("#/components/schemas/Pet") points at, or null.
const json* follow(const json& root, const std::string& ref) {
  if (ref.rfind("#/", 0) != 0) return nullptr;
  try {
    const json::json_pointer pointer(ref.substr(1));
    return root.contains(pointer) ? &root.at(pointer) : nullptr;
  } catch (const json::exception&) {
    return nullptr;
  }
}

// `node` with local $refs replaced by what they point at. A reference deeper than kMaxRefDepth
// (a recursive schema) becomes `{}` there: any value is accepted below that depth. `budget`:
// how many more values may be made (kMaxInlined).
Result<json> inlineRefs(const json& node, const json& root, std::size_t& budget, int depth = 0) {
  if (budget == 0 || --budget == 0)
    return makeError("$refs inline to more than " + std::to_string(kMaxInlined) +
                     " values (a schema that refers to itself more than once?)");
  if (node.is_object()) {
    if (const auto ref = node.find("$ref"); ref != node.end() && ref->is_string()) {
      if (depth >= kMaxRefDepth) return json::object();
      const json* target = follow(root, ref->get<std::string>());
      if (!target) return makeError("unresolvable $ref \"" + ref->get<std::string>() + "\"");
      return inlineRefs(*target, root, budget, depth + 1);
    }
    json out = json::object();
    for (const auto& [key, value] : node.items()) {
      auto v = inlineRefs(value, root, budget, depth);
      if (!v) return v;
      out[key] = std::move(*v);
    }
    return out;
  }
  if (node.is_array()) {
    json out = json::array();
    for (const auto& item : node) {
      auto v = inlineRefs(item, root, budget, depth);
      if (!v) return v;
      out.push_back(std::move(*v));
    }
    return out;
  }
  return node;
}

// An OpenAPI 3.0 schema object as JSON Schema: `nullable` becomes a "null" type, annotations
// JSON Schema does not know are dropped.
json toJsonSchema(json schema) {
  if (schema.is_array()) {
    for (auto& s : schema) s = toJsonSchema(std::move(s));
    return schema;
  }
  if (!schema.is_object()) return schema;
  const auto nullable = schema.find("nullable");
  if (nullable != schema.end() && *nullable == true && schema.contains("type")) {
    json& type = schema["type"];
    if (type.is_string()) type = json::array({type, "null"});
  }
  for (const char* k : {"nullable", "example", "xml", "discriminator", "externalDocs"})
    schema.erase(k);
  for (auto& [key, value] : schema.items())
    if (key != "enum" && key != "const" && key != "default" && key != "examples")
      value = toJsonSchema(std::move(value));
  return schema;
}

std::string routeName(const std::string& api, const std::string& method, const std::string& path,
                      const json& operation) {
  if (const auto id = operation.find("operationId"); id != operation.end() && id->is_string())
    return id->get<std::string>();
  std::string name = api + "-" + method;
  for (const char c : path) {
    if (c == '/')
      name += '-';
    else if (c != '{' && c != '}')
      name += c;
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

std::string joinPaths(const std::string& base, const std::string& path) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b + (path.empty() || path[0] != '/' ? "/" : "") + path;
}

// servers[0].url with its variables' defaults.
std::string serverUrl(const json& spec) {
  const auto servers = spec.find("servers");
  if (servers == spec.end() || !servers->is_array() || servers->empty()) return "";
  const json& s = (*servers)[0];
  std::string url = stringField(s, "url");
  if (const auto vars = s.find("variables"); vars != s.end() && vars->is_object())
    for (const auto& [name, v] : vars->items()) {
      const std::string token = "{" + name + "}";
      const std::string value = stringField(v, "default");
      // Searched on after each replacement: a default may hold its own {name}.
      for (auto at = url.find(token); at != std::string::npos;
           at = url.find(token, at + value.size()))
        url.replace(at, token.size(), value);
    }
  return url;
}

// The plugins for one operation's security requirements; `all`: every scheme must accept.
Result<json> authPlugins(const json& spec, const json& requirements, bool& all) {
  json plugins = json::array();
  all = false;
  if (!requirements.is_array()) return plugins;
  std::set<std::string> names;
  for (const auto& requirement : requirements) {
    if (!requirement.is_object()) continue;
    if (requirement.empty()) return json::array();  // `{}`: calling without credentials is fine
    all |= requirement.size() > 1;
    for (const auto& [name, _] : requirement.items()) names.insert(name);
  }
  const json* schemes = follow(spec, "#/components/securitySchemes");
  for (const auto& name : names) {
    const json* scheme = schemes && schemes->contains(name) ? &(*schemes)[name] : nullptr;
    if (!scheme) return makeError("security requirement \"" + name + "\" has no securityScheme");
    const std::string type = stringField(*scheme, "type");
    const std::string where = "securitySchemes." + name + ": ";
    if (type == "apiKey") {
      const std::string in = stringField(*scheme, "in");
      if (in != "header" && in != "query")
        return makeError(where + "apiKey in " + in + " is not supported (header, query)");
      plugins.push_back({{"name", "key-auth"}, {"config", {{in, stringField(*scheme, "name")}}}});
    } else if (type == "http") {
      const std::string s = stringField(*scheme, "scheme");
      std::string lower = s;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "bearer")
        plugins.push_back({{"name", "jwt"}});
      else if (lower == "basic")
        plugins.push_back({{"name", "basic-auth"}});
      else
        return makeError(where + "http scheme " + s + " is not supported (bearer, basic)");
    } else if (type == "openIdConnect") {
      plugins.push_back(
          {{"name", "jwt"}, {"config", {{"discovery", scheme->value("openIdConnectUrl", "")}}}});
    } else {
      return makeError(where + "type " + type +
                       " is not supported (apiKey, http bearer/basic, openIdConnect)");
    }
  }
  return plugins;
}

// The example of the first 2xx answer: (status, JSON body or null).
std::pair<int, json> mockAnswer(const json& operation) {
  const auto responses = operation.find("responses");
  if (responses == operation.end() || !responses->is_object()) return {200, nullptr};
  std::vector<std::string> codes;
  for (const auto& [code, _] : responses->items())
    if (!code.empty() && code[0] == '2') codes.push_back(code);
  std::sort(codes.begin(), codes.end());
  if (codes.empty()) return {200, nullptr};
  const std::string& code = codes[0];
  const bool digits = code.size() == 3 && std::all_of(code.begin(), code.end(), [](char c) {
                        return std::isdigit(static_cast<unsigned char>(c));
                      });
  const int status = digits ? std::stoi(code) : 200;  // "2XX", or not a status at all
  const json& response = (*responses)[codes[0]];
  const auto content = response.find("content");
  if (content == response.end() || !content->contains("application/json")) return {status, nullptr};
  const json& media = (*content)["application/json"];
  if (media.contains("example")) return {status, media["example"]};
  if (const auto examples = media.find("examples");
      examples != media.end() && examples->is_object() && !examples->empty())
    return {status, examples->begin()->value("value", json())};
  if (const auto schema = media.find("schema");
      schema != media.end() && schema->is_object() && schema->contains("example"))
    return {status, (*schema)["example"]};
  return {status, nullptr};
}

void appendPlugins(json& plugins, const json& extra) {
  if (extra.is_array())
    for (const auto& p : extra) plugins.push_back(p);
}

}  // namespace

Result<json> importOpenApi(const json& raw_spec, const OpenApiImport& o) {
  if (!raw_spec.is_object()) return makeError("the spec is not a map");
  const std::string version = stringField(raw_spec, "openapi");
  if (version.rfind("3.0", 0) != 0 && version.rfind("3.1", 0) != 0)
    return makeError("openapi: expected 3.0.x or 3.1.x, got \"" + version + "\"");
  const auto paths = raw_spec.find("paths");
  if (paths == raw_spec.end() || !paths->is_object() || paths->empty())
    return makeError("paths: the spec has no operations");
  const std::string label = o.api;
  const std::string base = o.base_path.empty() ? "/" : o.base_path;
  json out{{"apis", json::array()}, {"routes", json::array()}};

  json api{{"name", o.api},
           {"base_path", base},
           {"state", o.state.empty() ? "published" : o.state},
           {"openapi", {{"spec", raw_spec}}},
           {"labels", {{kOpenApiLabel, label}}}};
  if (const auto info = raw_spec.find("info"); info != raw_spec.end() && info->contains("version"))
    api["version"] = (*info)["version"].is_string() ? (*info)["version"].get<std::string>()
                                                    : (*info)["version"].dump();
  if (const auto docs = raw_spec.find("externalDocs");
      docs != raw_spec.end() && docs->contains("url"))
    api["docs"] = (*docs)["url"];
  out["apis"].push_back(std::move(api));

  // Where operations go: the named upstream, or one made from servers[0].
  std::string upstream = o.upstream;
  std::string server_path;
  const std::string url = serverUrl(raw_spec);
  if (!url.empty() && url.find("://") != std::string::npos) {
    auto parsed = http::parseAbsoluteUrl(url);
    if (!parsed) return makeError("servers[0].url: " + parsed.error().message);
    server_path = parsed->target.substr(0, parsed->target.find('?'));
    if (server_path == "/") server_path.clear();
    if (upstream.empty() && !o.mock) {
      upstream = o.api;
      json up{{"name", upstream},
              {"targets", json::array({parsed->host + ":" + std::to_string(parsed->port)})},
              {"labels", {{kOpenApiLabel, label}}}};
      if (parsed->https) up["tls"] = {{"server_name", parsed->host}};
      out["upstreams"] = json::array({std::move(up)});
    }
  } else if (!url.empty()) {
    server_path = url == "/" ? "" : url;  // a relative server URL: a path on the upstream
  }
  if (upstream.empty() && !o.mock)
    return makeError("no upstream: give one, or an absolute servers[0].url in the spec");

  json root_plugins = raw_spec.value("x-portico-plugins", json::array());
  const json root_security = raw_spec.value("security", json::array());
  std::set<std::string> names;
  for (const auto& [path, item] : paths->items()) {
    if (!item.is_object()) continue;
    std::size_t budget = kMaxInlined;
    auto resolved_item = inlineRefs(item, raw_spec, budget);
    if (!resolved_item) return makeError("paths." + path + ": " + resolved_item.error().message);
    for (const char* method : kMethods) {
      if (!resolved_item->contains(method)) continue;
      const json& op = (*resolved_item)[method];
      std::string upper = method;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const std::string name = routeName(o.api, method, path, op);
      if (!names.insert(name).second)
        return makeError("paths." + path + "." + method + ": route name \"" + name +
                         "\" is used twice (operationId)");
      json route{{"name", name},
                 {"api", o.api},
                 {"match", {{"path", joinPaths(base, path)}, {"methods", json::array({upper})}}},
                 {"labels", {{kOpenApiLabel, label}}}};
      if (base != "/" || !server_path.empty())
        route["rewrite"] = joinPaths(server_path.empty() ? "/" : server_path, path);
      bool all = false;
      auto auth = authPlugins(raw_spec, op.value("security", root_security), all);
      if (!auth) return makeError("paths." + path + "." + method + ": " + auth.error().message);
      json plugins = std::move(*auth);
      if (all) route["auth_mode"] = "all";
      appendPlugins(plugins, root_plugins);
      appendPlugins(plugins, op.value("x-portico-plugins", json::array()));
      if (const auto body = op.find("requestBody"); body != op.end() && body->is_object()) {
        const json* media =
            body->contains("content") && (*body)["content"].contains("application/json")
                ? &(*body)["content"]["application/json"]
                : nullptr;
        if (media && media->contains("schema"))
          plugins.push_back({{"name", "request-validation"},
                             {"config", {{"body_schema", toJsonSchema((*media)["schema"])}}}});
      }
      if (o.mock) {
        auto [status, example] = mockAnswer(op);
        json config{{"status", status}};
        if (!example.is_null() && status != 204 && status != 304) {
          config["body"] = example.dump();
          config["headers"] = {{"Content-Type", "application/json"}};
        }
        plugins.push_back({{"name", "static-response"}, {"config", std::move(config)}});
      } else {
        route["upstream"] = upstream;
      }
      if (!plugins.empty()) route["plugins"] = std::move(plugins);
      out["routes"].push_back(std::move(route));
    }
  }
  return out;
}

}  // namespace portico::admin
