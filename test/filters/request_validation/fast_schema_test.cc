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
  const char* scalars[] = {"null",
                           "true",
                           "false",
                           "0",
                           "1",
                           "-3",
                           "2.5",
                           "1.0",
                           "1e2",
                           "1000",
                           "1001",
                           "18446744073709551615",
                           "\"\"",
                           "\"ab\"",
                           "\"gift\"",
                           "\"rush\"",
                           "\"é€\"",
                           "\"abcdefghijk\"",
                           "\"a1\"",
                           "\"g\\u0069ft\"",
                           "-0.0",
                           "1e400",
                           "-9223372036854775809"};
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
      if (parsed.is_discarded()) {  // 1e400: out of double's range
        EXPECT_FALSE(fast->valid(doc)) << doc;
        continue;
      }
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

TEST(FastSchema, ParsesExactlyJson) {
  const auto any = FastSchema::compile(nlohmann::json::object());  // the schema {}: any JSON
  ASSERT_TRUE(any);
  for (const char* doc :
       {"0", "-0", "-12.5e+3", "1E-2", "18446744073709551616", " [ ] ", "{}", "\"\"",
        R"("\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00")", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "{\"a\":[null,true,false,{\"b\":{}}]}", "\t\r\n\"x\"\n"})
    EXPECT_TRUE(any->valid(doc)) << doc;
  for (const char* doc : {"",
                          " ",
                          "01",
                          "-",
                          "1.",
                          ".5",
                          "1e",
                          "+1",
                          "0x10",
                          "NaN",
                          "tru",
                          "nulll",
                          "[1,]",
                          "[,1]",
                          "{\"a\":1,}",
                          "{\"a\" 1}",
                          "{a:1}",
                          "{'a':1}",
                          "[1 2]",
                          "\"abc",
                          "\"a\\x\"",
                          "\"\\u12\"",
                          "\"\\uDE00\"",
                          "\"\\uD83D\"",
                          "\"\\uD83Dx\"",
                          "\"\x01\"",
                          "\"\xc0\xaf\"",
                          "\"\xed\xa0\x80\"",
                          "\"\xf4\x90\x80\x80\"",
                          "\"\xe2\x82\"",
                          "\"\x80\"",
                          "1 2",
                          "{}}",
                          "[[]",
                          "1e400",
                          "-1e999"})
    EXPECT_FALSE(any->valid(doc)) << doc;
  // Past double's range without an exponent: nlohmann-json refuses it too.
  EXPECT_FALSE(any->valid("[1" + std::string(310, '6') + "]"));
  EXPECT_FALSE(any->valid("-" + std::string(310, '7') + ".5"));
  EXPECT_TRUE(any->valid("[1" + std::string(300, '6') + "]"));  // 1.7e300 is a double
  EXPECT_FALSE(any->valid(std::string_view("[1]\0", 4)));
  EXPECT_TRUE(any->valid(std::string(200, '[') + std::string(200, ']')));
  EXPECT_FALSE(any->valid(std::string(300, '[') + std::string(300, ']')));  // to valijson
}

TEST(FastSchema, ComparesEscapedNamesAndStringsByValue) {
  const auto fast = FastSchema::compile(nlohmann::json::parse(
      R"({"type":"object","required":["é"],"additionalProperties":false,
          "properties":{"é":{"enum":["a\"b","€"]},"n":{"type":"string","maxLength":2}}})"));
  ASSERT_TRUE(fast);
  EXPECT_TRUE(fast->valid(R"({"\u00e9":"a\"b"})"));
  EXPECT_TRUE(fast->valid(R"({"é":"\u20ac","n":"\ud83d\ude00\u00e9"})"));  // 2 code points
  EXPECT_FALSE(fast->valid(R"({"é":"€","n":"abc"})"));
  EXPECT_FALSE(fast->valid(R"({"\u00e8":"€"})"));
  EXPECT_FALSE(fast->valid(R"({"é":"a\\b"})"));
  EXPECT_FALSE(fast->valid(R"({"é":"€","n":"\u0000a"})"));  // valijson decides
}

// Bytes that break JSON where they land, put into valid documents: whatever the fast path still
// calls valid must be JSON that valijson calls valid too.
TEST(FastSchema, DamagedDocumentsNeverPass) {
  const auto schema = nlohmann::json::parse(kSchemas[0]);
  const auto fast = FastSchema::compile(schema);
  auto reference = JsonSchema::compile(schema);
  ASSERT_TRUE(fast && reference.ok());
  const std::string good =
      R"({"id": 7, "email": "a\u00e9@x", "items": [{"sku": "ab", "qty": 2.5e0}], "note": null})";
  ASSERT_TRUE(fast->valid(good));
  const char noise[] = {'"', '\\', ',', ':', '{', '}',    '[',    ']',    '0',
                        '-', '.',  'e', 'u', ' ', '\x01', '\x80', '\xc3', '\xff'};
  std::mt19937 rng(14);
  int still_valid = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string doc = good;
    for (unsigned edits = 1 + rng() % 3; edits > 0; --edits) {
      const std::size_t at = rng() % doc.size();
      const char ch = noise[rng() % std::size(noise)];
      switch (rng() % 3) {
        case 0:
          doc[at] = ch;
          break;
        case 1:
          doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at), ch);
          break;
        default:
          doc.erase(at, 1);
      }
    }
    if (!fast->valid(doc)) continue;
    ++still_valid;
    const auto parsed = nlohmann::json::parse(doc, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << "fast path accepted what is not JSON: " << doc;
    std::vector<SchemaViolation> v;
    EXPECT_TRUE(reference->validate(parsed, v)) << doc;
  }
  EXPECT_GT(still_valid, 100);  // harmless edits (spaces, digits) do stay valid
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
