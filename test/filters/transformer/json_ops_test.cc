#include "filters/transformer/json_ops.h"

#include <gtest/gtest.h>

#include "flow/request_scope.h"

namespace portico::filters {
namespace {

// The ops applied to `doc`, as text ("not JSON" when transformJson refuses the body).
std::string applyText(const char* ops_json, std::string doc, std::string* errors = nullptr) {
  config::Diagnostics diag;
  auto ops = readJsonOps(json::parse(ops_json), "json", diag);
  if (errors) *errors = diag.format();
  EXPECT_TRUE(errors || diag.empty()) << diag.format();
  api::RequestContext ctx;
  http::RequestHead req;
  req.headers.add("X-Tenant", "acme");
  ctx.request = &req;
  std::string out;
  if (!transformJson(ops, doc, flow::RequestScope(ctx, nullptr), out)) return "not JSON";
  return out;
}

json apply(const char* ops_json, const char* doc_json, std::string* errors = nullptr) {
  return json::parse(applyText(ops_json, doc_json, errors));
}

TEST(JsonOps, EachOp) {
  EXPECT_EQ(apply(R"([{"op":"remove","path":"/a/b"}])", R"({"a":{"b":1,"c":2}})"),
            json::parse(R"({"a":{"c":2}})"));
  EXPECT_EQ(apply(R"([{"op":"rename","from":"/nm","to":"/name"}])", R"({"nm":"x"})"),
            json::parse(R"({"name":"x"})"));
  EXPECT_EQ(apply(R"([{"op":"set","path":"/x/y","value":"{request.header.x-tenant}"}])", "{}"),
            json::parse(R"({"x":{"y":"acme"}})"));
  EXPECT_EQ(apply(R"([{"op":"copy","from":"/id","to":"/ref"}])", R"({"id":5})"),
            json::parse(R"({"id":5,"ref":5})"));
  EXPECT_EQ(apply(R"([{"op":"move","from":"/a/b","to":"/b"}])", R"({"a":{"b":[1]}})"),
            json::parse(R"({"a":{},"b":[1]})"));
  EXPECT_EQ(
      apply(R"([{"op":"default","path":"/t","value":[]},{"op":"default","path":"/u","value":1}])",
            R"({"u":0})"),
      json::parse(R"({"u":0,"t":[]})"));
  // Absent sources change nothing.
  EXPECT_EQ(apply(R"([{"op":"move","from":"/none","to":"/x"},{"op":"remove","path":"/zz"}])",
                  R"({"a":1})"),
            json::parse(R"({"a":1})"));
}

TEST(JsonOps, WildcardsAndIndexes) {
  EXPECT_EQ(apply(R"([{"op":"rename","from":"/items/*/nm","to":"/items/*/name"},
                      {"op":"remove","path":"/items/*/cost"},
                      {"op":"set","path":"/items/0/first","value":true}])",
                  R"({"items":[{"nm":"a","cost":1},{"nm":"b"}]})"),
            json::parse(R"({"items":[{"name":"a","first":true},{"name":"b"}]})"));
  EXPECT_EQ(apply(R"([{"op":"remove","path":"/list/1"}])", R"({"list":[1,2,3]})"),
            json::parse(R"({"list":[1,3]})"));
}

TEST(JsonOps, AllowKeepsOnlyListedPaths) {
  EXPECT_EQ(apply(R"([{"op":"allow","paths":["/id","/items/*/price","/meta"]}])",
                  R"({"id":1,"secret":2,"items":[{"price":3,"cost":1},{"cost":2}],
                      "meta":{"a":1,"b":{"c":2}}})"),
            json::parse(R"({"id":1,"items":[{"price":3},{}],"meta":{"a":1,"b":{"c":2}}})"));
}

TEST(JsonOps, RefusedAtLoad) {
  std::string errors;
  apply(R"([{"op":"explode","path":"/a"},{"op":"remove","path":"a"},
            {"op":"set","path":"/b","value":"{call.body}"},
            {"op":"move","from":"/items/*/a","to":"/other/b"},
            {"op":"copy","from":"/items/*","to":"/x"},
            {"op":"set","path":"/c"}])",
        "{}", &errors);
  for (const char* expected :
       {"unknown op \"explode\"", "must be a JSON Pointer", "only request.* and consumer.*",
        "must keep from's path", "must name a field", "json[5].value: is required"})
    EXPECT_NE(errors.find(expected), std::string::npos) << expected << "\n" << errors;
}

TEST(JsonOps, KeepsKeyOrderAndValues) {
  // Untouched members keep their place; new ones come last; numbers keep their kind.
  EXPECT_EQ(
      applyText(R"([{"op":"rename","from":"/b","to":"/z"},{"op":"set","path":"/a","value":0}])",
                R"( {"c": 1, "b": [true, null, -5, 18446744073709551615, 2.0, 1.5e300],
                           "a": "x\"\u00e9\n"} )"),
      R"({"c":1,"a":0,"z":[true,null,-5,18446744073709551615,2.0,1.5e+300]})");
  EXPECT_EQ(applyText(R"([{"op":"remove","path":"/x"}])", R"({"s":"\u0001é\/"})"),
            "{\"s\":\"\\u0001é/\"}");
  // A repeated key: the last one is the value ops see, as with any JSON parser.
  EXPECT_EQ(applyText(R"([{"op":"copy","from":"/k","to":"/c"}])", R"({"k":1,"k":2})"),
            R"({"k":1,"k":2,"c":2})");
  // A scalar document: ops that need a container change nothing.
  EXPECT_EQ(applyText(R"([{"op":"remove","path":"/a"}])", "42"), "42");
}

TEST(JsonOps, EditsInsideValuesTheyProduced) {
  EXPECT_EQ(apply(R"([{"op":"default","path":"/meta","value":{"a":{"b":1}}},
                      {"op":"set","path":"/meta/a/c","value":2},
                      {"op":"copy","from":"/meta/a","to":"/copy"},
                      {"op":"remove","path":"/meta/a/b"}])",
                  "{}"),
            json::parse(R"({"meta":{"a":{"c":2}},"copy":{"b":1,"c":2}})"));
  // A copy is a copy: editing it leaves the source alone.
  EXPECT_EQ(apply(R"([{"op":"copy","from":"/a","to":"/b"},{"op":"remove","path":"/b/x"}])",
                  R"({"a":{"x":1,"y":2}})"),
            json::parse(R"({"a":{"x":1,"y":2},"b":{"y":2}})"));
}

TEST(JsonOps, RemovalsWithoutOpeningThenOtherEdits) {
  // Removals from objects still on the tape, then edits that need them opened, and a copy of
  // such an object edited on its own.
  EXPECT_EQ(applyText(R"([{"op":"remove","path":"/a/x"},{"op":"remove","path":"/a/y"},
                          {"op":"copy","from":"/a","to":"/b"},{"op":"remove","path":"/b/z"},
                          {"op":"set","path":"/a/w","value":4},{"op":"remove","path":"/a/none"}])",
                      R"({"a":{"x":1,"y":2,"z":3}})"),
            R"({"a":{"z":3,"w":4},"b":{}})");
  // An object over 64 members is opened instead.
  std::string big = "{";
  for (int i = 0; i < 100; ++i)
    big += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  big += "}";
  const json out =
      apply(R"([{"op":"remove","path":"/k99"},{"op":"remove","path":"/k0"}])", big.c_str());
  EXPECT_EQ(out.size(), 98u);
  EXPECT_FALSE(out.contains("k99"));
}

TEST(JsonOps, RefusesWhatIsNotJson) {
  for (const char* bad : {"", "{", R"({"a":tru})", R"({"a":1,})", "[1 2]", "<xml/>",
                          R"({"a":"\x"})", "{\"a\":\"\xff\"}", "[1]]"})
    EXPECT_EQ(applyText(R"([{"op":"remove","path":"/a"}])", bad), "not JSON") << bad;
}

TEST(JsonOps, LargeDocument) {
  std::string doc = R"({"id":7,"items":[)";
  for (int i = 0; i < 20000; ++i)
    doc += (i ? "," : "") + std::string(R"({"sku":"s)") + std::to_string(i) + R"(","price":)" +
           std::to_string(i) + R"(,"cost":1})";
  doc += "]}";
  const json out = apply(R"([{"op":"remove","path":"/items/*/cost"}])", doc.c_str());
  ASSERT_EQ(out["items"].size(), 20000u);
  EXPECT_EQ(out["items"][19999], json::parse(R"({"sku":"s19999","price":19999})"));
}

}  // namespace
}  // namespace portico::filters
