// libFuzzer target: request-validation's one-pass walk (FastSchema) must never crash or read out
// of bounds, and what it calls valid must be JSON (nlohmann-json accepts it) that valijson calls
// valid too: the fast path may be stricter than valijson, never more lenient (ADR 0009).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "filters/request_validation/fast_schema.h"
#include "filters/request_validation/json_schema.h"

namespace {

const nlohmann::json& schema() {
  static const auto s = nlohmann::json::parse(R"({"type": "object", "required": ["id", "k"],
    "properties": {"id": {"type": "integer", "minimum": -5, "exclusiveMaximum": 1e6},
                   "s": {"type": "string", "minLength": 2, "maxLength": 5},
                   "e": {"enum": ["a\"b", "\u00e9", true, null]},
                   "list": {"type": "array", "maxItems": 4, "items": {"type": ["number", "null"]}},
                   "o": {"type": "object", "maxProperties": 2, "additionalProperties": false,
                         "properties": {"x": {}, "y": {"type": "boolean"}}}},
    "additionalProperties": {"type": ["string", "object", "array"]}})");
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto fast = portico::filters::FastSchema::compile(schema());
  static const auto reference = portico::filters::JsonSchema::compile(schema());
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  if (!fast->valid(doc)) return 0;
  const auto parsed = nlohmann::json::parse(doc, nullptr, false);
  if (parsed.is_discarded()) __builtin_trap();  // accepted what is not JSON
  std::vector<portico::filters::SchemaViolation> violations;
  if (!reference->validate(parsed, violations)) __builtin_trap();  // more lenient than valijson
  return 0;
}
