#pragma once
// A JSON Schema (draft 7), compiled once at config load and shared by every worker; validates a
// document and reports every failure with the JSON Pointer of the value that failed.
// valijson (ADR 0009), inside json_schema.cc only.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "filters/request_validation/fast_schema.h"

namespace portico::filters {

struct SchemaViolation {
  std::string pointer;  // "" for the document itself, "/items/0/price" below it
  std::string message;
};

class JsonSchema {
 public:
  // The schema as JSON; the error says what the schema parser refused.
  static Result<JsonSchema> compile(const nlohmann::json& schema);

  // Whether `document` (JSON text) is valid; appends every failure to `out`. A document that is
  // not JSON is one failure at "" ("not JSON: ...").
  bool validateText(std::string_view document, std::vector<SchemaViolation>& out) const;
  // The same for a value already parsed (query and header parameters).
  bool validate(const nlohmann::json& value, std::vector<SchemaViolation>& out) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
  std::optional<FastSchema> fast_;  // when every keyword of the schema has a fast check
};

}  // namespace portico::filters
