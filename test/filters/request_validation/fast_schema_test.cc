#include "filters/request_validation/fast_schema.h"

#include <gtest/gtest.h>

#include <random>

#include "filters/request_validation/json_schema.h"

namespace portico::filters {
namespace {

const char* kSchemas[] = {
    R"({"type": "object", "required": ["id", "items"], "additionalProperties": false,
        "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 1000},
                       "email": {"type": "string", "minLength": 3, "maxLength": 10},
                       "items": {"type": "array", "minItems": 1, "maxItems": 3,
                                 "items": {"type": "object", "required": ["sku"],
                                           "properties": {"sku": {"type": "string", "maxLength": 4},
                                                          "qty": {"type": "number", "exclusiveMinimum": 0}}}},
                       "note": {"enum": ["gift", "rush", null]}}})",
    R"({"type": ["object", "null"], "minProperties": 1, "maxProperties": 3,
        "additionalProperties": {"type": ["string", "boolean"], "const": true},
        "properties": {"id": {"type": "number", "exclusiveMaximum": 10}}})",
    R"({"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": -2}}})",
};

// Random documents around the shapes the schemas describe: right, wrong and odd.
std::string randomValue(std::mt19937& rng, int depth) {
  const char* scalars[] = {
      "null",  "true",   "false",    "0",        "1",      "-3",
      "2.5",   "1.0",    "1e2",      "1000",     "1001",   "18446744073709551615",
      "\"\"",  "\"ab\"", "\"gift\"", "\"rush\"", "\"é€\"", "\"abcdefghijk\"",
      "\"a1\""};
  const int pick = static_cast<int>(rng() % (depth > 2 ? 1 : 4));
  if (pick == 0) return scalars[rng() % std::size(scalars)];
  if (pick == 1) {
    std::string s = "[";
    for (unsigned i = 0, n = rng() % 4; i < n; ++i)
      s += (i ? "," : "") + randomValue(rng, depth + 1);
    return s + "]";
  }
  const char* keys[] = {"id", "email", "items", "note", "sku", "qty", "x", "id"};
  std::string s = "{";
  for (unsigned i = 0, n = rng() % 5; i < n; ++i)
    s += (i ? ",\"" : "\"") + std::string(keys[rng() % std::size(keys)]) +
         "\":" + randomValue(rng, depth + 1);
  return s + "}";
}

TEST(FastSchema, NeverMoreLenientThanValijson) {
  std::mt19937 rng(2026);
  int fast_valid = 0;
  for (const char* text : kSchemas) {
    const auto schema = nlohmann::json::parse(text);
    const auto fast = FastSchema::compile(schema);
    ASSERT_TRUE(fast.has_value()) << text;
    auto reference = JsonSchema::compile(schema);
    ASSERT_TRUE(reference.ok());
    for (int i = 0; i < 20000; ++i) {
      const std::string doc = randomValue(rng, 0);
      const auto parsed = nlohmann::json::parse(doc, nullptr, false);
      ASSERT_FALSE(parsed.is_discarded()) << doc;
      std::vector<SchemaViolation> v;
      const bool slow = reference->validate(parsed, v);  // valijson alone
      if (fast->valid(doc)) {
        ++fast_valid;
        EXPECT_TRUE(slow) << "fast path accepted what valijson refuses: " << doc << "\n" << text;
      }
    }
  }
  EXPECT_GT(fast_valid, 100);  // the generator does produce valid documents
}

TEST(FastSchema, ParsesInPlaceWhenTheBodyHasReadAheadRoom) {
  const auto fast = FastSchema::compile(nlohmann::json::parse(
      R"({"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}})"));
  ASSERT_TRUE(fast);
  for (const auto& [doc, valid] : std::vector<std::pair<std::string, bool>>{
           {R"({"id":1})", true}, {R"({"id":"x"})", false}, {R"({"id":1)", false}, {"{}", false}}) {
    std::string body;
    body.reserve(doc.size() + 64);  // as a gathered body (BufferedBodyTransform::kReadAhead)
    body = doc;
    EXPECT_EQ(fast->valid(body, body.capacity()), valid) << doc;
    EXPECT_EQ(fast->valid(body), valid) << doc;  // copied: the same verdict
  }
}

TEST(FastSchema, OnlyKeywordsItChecks) {
  for (const char* text :
       {R"({"pattern": "^a"})", R"({"oneOf": [{"type": "string"}]})", R"({"enum": [1, 2]})",
        R"({"items": [{"type": "string"}]})", R"({"format": "date"})", R"({"multipleOf": 2})",
        R"({"type": "object", "properties": {"a": {"$ref": "#"}}})"})
    EXPECT_FALSE(FastSchema::compile(nlohmann::json::parse(text)).has_value()) << text;
  EXPECT_TRUE(FastSchema::compile(
                  nlohmann::json::parse(R"({"title": "t", "type": "string", "maxLength": 3})"))
                  .has_value());
}

TEST(FastSchema, CountsReadFromYamlAreSignedIntegers) {
  nlohmann::json from_yaml = {{"type", "array"}, {"maxItems", std::int64_t{3}}};
  ASSERT_FALSE(from_yaml["maxItems"].is_number_unsigned());
  const auto fast = FastSchema::compile(from_yaml);
  ASSERT_TRUE(fast.has_value());
  EXPECT_TRUE(fast->valid("[1, 2, 3]"));
  EXPECT_FALSE(fast->valid("[1, 2, 3, 4]"));
}

}  // namespace
}  // namespace portico::filters
