#include "filters/transformer/json_ops.h"

#include <gtest/gtest.h>

#include "flow/request_scope.h"

namespace portico::filters {
namespace {

json apply(const char* ops_json, const char* doc_json, std::string* errors = nullptr) {
  config::Diagnostics diag;
  auto ops = readJsonOps(json::parse(ops_json), "json", diag);
  if (errors) *errors = diag.format();
  EXPECT_TRUE(errors || diag.empty()) << diag.format();
  api::RequestContext ctx;
  http::RequestHead req;
  req.headers.add("X-Tenant", "acme");
  ctx.request = &req;
  json doc = json::parse(doc_json);
  applyJsonOps(ops, doc, flow::RequestScope(ctx, nullptr));
  return doc;
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

}  // namespace
}  // namespace portico::filters
