#pragma once
// A fast path for JsonSchema: the common keywords (type, properties, required,
// additionalProperties, items, the numeric, length and count bounds, enum/const of strings,
// booleans and null), checked in one pass over the JSON text as it is parsed: no DOM, no tape.
// Schemas that use anything else get no fast path. Its answer "valid" is final; "invalid" (or a
// body that is not JSON) sends the document to valijson, which gives the verdict and the report —
// so the fast path may be stricter than valijson but never more lenient (ADR 0009).
#include <memory>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace portico::filters {

class FastSchema {
 public:
  // nullopt when the schema uses a keyword (or a form of one) the fast path does not check.
  static std::optional<FastSchema> compile(const nlohmann::json& schema);
  bool valid(std::string_view document) const;

  struct Check;

 private:
  std::shared_ptr<const Check> root_;
};

}  // namespace portico::filters
