#include "flow/template.h"

#include <gtest/gtest.h>

namespace portico::flow {
namespace {

// Resolves references from a fixed table (by their text).
class TableScope : public Scope {
 public:
  json table;
  json resolve(const Reference& ref) const override {
    auto it = table.find(ref.text);
    return it == table.end() ? json() : *it;
  }
};

TEST(Template, ParsesEveryKindOfReference) {
  auto t = StringTemplate::parse(
      "{request.path.id}{request.query.q}{request.header.X-Tenant}{request.body.a[0].b}"
      "{consumer.name}{consumer.groups}{user.status}{user.header.ETag}{user.body.items[*].sku}"
      "{items[*].body}{items[2].body.x}{item}{item.sku}");
  ASSERT_TRUE(t) << t.error().message;
  std::vector<Reference> refs;
  for (const auto& p : t->parts()) refs.push_back(std::get<Reference>(p));
  ASSERT_EQ(refs.size(), 13u);
  EXPECT_EQ(refs[0].root, Reference::Root::RequestPath);
  EXPECT_EQ(refs[2].root, Reference::Root::RequestHeader);
  EXPECT_EQ(refs[2].name, "x-tenant");  // case-insensitive
  EXPECT_EQ(refs[3].root, Reference::Root::RequestBody);
  ASSERT_EQ(refs[3].steps.size(), 3u);
  EXPECT_EQ(refs[3].steps[1].kind, Step::Kind::Index);
  EXPECT_EQ(refs[5].root, Reference::Root::ConsumerGroups);
  EXPECT_EQ(refs[6].root, Reference::Root::Call);
  EXPECT_EQ(refs[6].field, Reference::Field::Status);
  EXPECT_EQ(refs[7].field, Reference::Field::Header);
  EXPECT_EQ(refs[7].steps[0].key, "etag");
  EXPECT_EQ(refs[8].steps[1].kind, Step::Kind::All);
  EXPECT_TRUE(refs[9].every_item);
  EXPECT_EQ(refs[10].item, 2u);
  EXPECT_EQ(refs[11].root, Reference::Root::Item);
  EXPECT_EQ(refs[12].steps[0].key, "sku");
}

TEST(Template, RefusesMalformedReferences) {
  for (const char* bad :
       {"{request.bogus}", "{request.path}", "{consumer.email}", "{user}", "{user.nope}",
        "{user.body[}", "{user.body.a[x]}", "{", "}", "{ user.body }", "{user.status.x}"}) {
    EXPECT_FALSE(StringTemplate::parse(bad)) << bad;
  }
  auto braces = StringTemplate::parse("a {{literal}} b");
  ASSERT_TRUE(braces);
  TableScope none;
  EXPECT_EQ(braces->renderText(none), "a {literal} b");
}

TEST(Template, AWholeReferenceKeepsItsTypeTextOtherwise) {
  TableScope s;  // keyed by the references' texts
  auto whole = StringTemplate::parse("{item.n}");
  ASSERT_TRUE(whole);
  s.table["item.n"] = 7;
  s.table["item.o"] = {{"a", 1}};
  s.table["item.s"] = "a b/c";
  EXPECT_EQ(whole->render(s), json(7));
  auto obj = StringTemplate::parse("{item.o}");
  EXPECT_EQ(obj->render(s), json({{"a", 1}}));
  auto text = StringTemplate::parse("n={item.n} o={item.o} s={item.s} m={item.missing}");
  EXPECT_EQ(text->render(s), json("n=7 o={\"a\":1} s=a b/c m="));
  auto path = StringTemplate::parse("/x/{item.s}");
  EXPECT_EQ(path->renderText(s, true), "/x/a%20b%2Fc");
}

TEST(Template, WalkFollowsKeysIndexesAndEveryElement) {
  const json v = {{"items", {{{"sku", "a"}}, {{"sku", "b"}}, {{"other", 1}}}}};
  auto ref = StringTemplate::parse("{item.items[*].sku}");
  const auto& steps = std::get<Reference>(ref->parts()[0]).steps;
  EXPECT_EQ(walk(v, steps), json({"a", "b", nullptr}));
  auto idx = StringTemplate::parse("{item.items[1].sku}");
  EXPECT_EQ(walk(v, std::get<Reference>(idx->parts()[0]).steps), json("b"));
  auto out = StringTemplate::parse("{item.items[9].sku}");
  EXPECT_EQ(walk(v, std::get<Reference>(out->parts()[0]).steps), json());
}

TEST(Template, JsonTemplatesKeepTheirShape) {
  auto t =
      JsonTemplate::parse(json::parse(R"({"a": "{item.n}", "b": [1, "x{item.n}"], "c": true})"));
  ASSERT_TRUE(t);
  TableScope s;
  s.table["item.n"] = 3;
  EXPECT_EQ(t->render(s), json::parse(R"({"a": 3, "b": [1, "x3"], "c": true})"));
  int refs = 0;
  t->forEachReference([&](const Reference&) { ++refs; });
  EXPECT_EQ(refs, 2);
}

}  // namespace
}  // namespace portico::flow
