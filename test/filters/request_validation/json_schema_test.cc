#include "filters/request_validation/json_schema.h"

#include <gtest/gtest.h>

namespace portico::filters {
namespace {

const nlohmann::json kOrderSchema = nlohmann::json::parse(R"({
  "type": "object",
  "required": ["id", "items"],
  "properties": {
    "id": {"type": "integer", "minimum": 1},
    "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
    "items": {"type": "array", "minItems": 1,
              "items": {"type": "object", "required": ["sku"],
                        "properties": {"sku": {"type": "string", "maxLength": 8},
                                       "qty": {"type": "integer", "maximum": 100}}}},
    "note": {"enum": ["gift", "rush"]}
  },
  "additionalProperties": false
})");

std::vector<SchemaViolation> violations(const char* doc) {
  auto schema = JsonSchema::compile(kOrderSchema);
  EXPECT_TRUE(schema.ok());
  std::vector<SchemaViolation> out;
  schema->validateText(doc, out);
  return out;
}

bool reported(const std::vector<SchemaViolation>& v, const std::string& pointer) {
  for (const auto& one : v)
    if (one.pointer == pointer) return true;
  return false;
}

TEST(JsonSchema, ValidDocumentPasses) {
  EXPECT_TRUE(
      violations(R"({"id": 7, "items": [{"sku": "a1", "qty": 2}], "note": "gift"})").empty());
}

TEST(JsonSchema, EveryViolationWithItsPointer) {
  // Five constraints broken at once: each is reported where it is.
  const auto v =
      violations(R"({"id": 0, "email": "nope", "items": [{"sku": "way-too-long", "qty": 500}],
                                "note": "later", "extra": true})");
  for (const char* pointer : {"/id", "/email", "/items/0/sku", "/items/0/qty", "/note"})
    EXPECT_TRUE(reported(v, pointer)) << pointer;
  bool extra = false;  // additionalProperties: reported on the object
  for (const auto& one : v)
    extra |= one.message.find("extra") != std::string::npos || one.pointer.empty();
  EXPECT_TRUE(extra);
  // A missing required field, and an empty list.
  const auto missing = violations(R"({"items": []})");
  EXPECT_FALSE(missing.empty());
  EXPECT_TRUE(reported(missing, "/items"));
}

TEST(JsonSchema, NotJsonIsOneFailure) {
  const auto v = violations(R"({"id": 7,)");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pointer, "");
  EXPECT_NE(v[0].message.find("not JSON"), std::string::npos);
}

TEST(JsonSchema, BadSchemasAreRefused) {
  EXPECT_FALSE(JsonSchema::compile(nlohmann::json::parse(R"({"type": 5})")).ok());
  EXPECT_FALSE(
      JsonSchema::compile(nlohmann::json::parse(R"({"$ref": "http://elsewhere/s.json"})")).ok());
}

TEST(JsonSchema, PointersEscapeSlashAndTilde) {
  auto schema = JsonSchema::compile(nlohmann::json::parse(
      R"({"properties": {"a/b": {"type": "integer"}, "c~d": {"type": "integer"}}})"));
  ASSERT_TRUE(schema.ok());
  std::vector<SchemaViolation> v;
  EXPECT_FALSE(schema->validateText(R"({"a/b": "x", "c~d": "y"})", v));
  EXPECT_TRUE(reported(v, "/a~1b"));
  EXPECT_TRUE(reported(v, "/c~0d"));
}

}  // namespace
}  // namespace portico::filters
