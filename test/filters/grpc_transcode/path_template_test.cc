#include "filters/grpc_transcode/path_template.h"

#include <gtest/gtest.h>

namespace portico::filters::grpc_transcode {
namespace {

using Bound = std::vector<std::pair<std::string, std::string>>;

Bound matchOf(std::string_view tmpl, std::string_view path, bool expect = true) {
  auto t = PathTemplate::parse(tmpl);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  Bound b;
  EXPECT_EQ(t->match(path, b), expect) << tmpl << " vs " << path;
  return b;
}

TEST(PathTemplate, BindsVariablesToFieldPaths) {
  EXPECT_EQ(matchOf("/v1/shelves/{shelf}/books/{book.id}", "/v1/shelves/7/books/42"),
            (Bound{{"shelf", "7"}, {"book.id", "42"}}));
  EXPECT_EQ(matchOf("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/2"),
            (Bound{{"name", "shelves/1/books/2"}}));
  EXPECT_EQ(matchOf("/v1/files/{path=**}", "/v1/files/a/b/c.txt"), (Bound{{"path", "a/b/c.txt"}}));
  EXPECT_EQ(matchOf("/v1/files/**", "/v1/files"), Bound{});
  EXPECT_EQ(matchOf("/v1/things/{id}:cancel", "/v1/things/9:cancel"), (Bound{{"id", "9"}}));
  EXPECT_EQ(matchOf("/v1/items/{id}", "/v1/items/a%20b%2Fc"), (Bound{{"id", "a b/c"}}));
  EXPECT_EQ(matchOf("/v1/*/x", "/v1/anything/x"), Bound{});
}

TEST(PathTemplate, RefusesWhatDoesNotMatch) {
  matchOf("/v1/shelves/{shelf}", "/v1/shelves", false);
  matchOf("/v1/shelves/{shelf}", "/v1/shelves/1/more", false);
  matchOf("/v1/shelves/{shelf}", "/v1/shelves/", false);  // an empty segment binds nothing
  matchOf("/v1/things/{id}:cancel", "/v1/things/9", false);
  matchOf("/v1/things/{id}:cancel", "/v1/things/9:undo", false);
  matchOf("/v1/a", "/v1/b", false);
  matchOf("/v1/a", "v1/a", false);
}

TEST(PathTemplate, ParseErrors) {
  for (const char* bad :
       {"", "v1/x", "/v1/{id", "/v1/{}", "/v1/{a..b}", "/v1/**/x", "/v1/{id}x", "/v1//x", "/v1/x:"})
    EXPECT_FALSE(PathTemplate::parse(bad)) << bad;
}

}  // namespace
}  // namespace portico::filters::grpc_transcode
