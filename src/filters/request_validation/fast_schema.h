#pragma once
// A fast path for JsonSchema: the common keywords (type, properties, required,
// additionalProperties, items, the numeric, length and count bounds, enum/const of strings,
// booleans and null), checked over simdjson's tape without building a DOM. Schemas that use
// anything else get no fast path. Its answer "valid" is final; "invalid" (or a body simdjson
// refuses) sends the document to valijson, which gives the verdict and the report — so the fast
// path may be stricter than valijson but never more lenient (ADR 0009).
#include <memory>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace portico::filters {

class FastSchema {
 public:
  // nullopt when the schema uses a keyword (or a form of one) the fast path does not check.
  static std::optional<FastSchema> compile(const nlohmann::json& schema);
  // `capacity`: how many bytes from document.data() may be read (simdjson reads up to 64 past
  // the end); with room enough it parses in place instead of copying into a padded buffer.
  bool valid(std::string_view document, std::size_t capacity = 0) const;

  struct Check;

 private:
  std::shared_ptr<const Check> root_;
};

}  // namespace portico::filters
