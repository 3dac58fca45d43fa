#pragma once
// OpenAPI 3.0 / 3.1 -> entities (docs/apis.md, "OpenAPI import"): an `apis` object keeping the
// spec, one route per operation (path templates, methods, operationId as the name), auth
// plugins from securitySchemes, request-validation from JSON request bodies, x-portico-plugins,
// and with `mock` a static answer from each operation's example. Pure: the Admin API plans and
// applies the result like any document.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace portico::admin {

struct OpenApiImport {
  std::string api;        // the apis object's name
  std::string upstream;   // "" = an upstream made from servers[0]
  std::string state;      // "" = published
  std::string base_path;  // "" = /
  bool mock = false;
};

// The label every generated object carries (value: the API's name): a re-import deletes the
// routes of that API the spec no longer has, and nothing else.
inline constexpr const char* kOpenApiLabel = "openapi";

// {"apis": [...], "upstreams": [...]?, "routes": [...]}, or the first problem found.
Result<nlohmann::json> importOpenApi(const nlohmann::json& spec, const OpenApiImport& options);

}  // namespace portico::admin
