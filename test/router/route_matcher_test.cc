#include "router/route_matcher.h"

#include <gtest/gtest.h>

namespace portico::router {
namespace {

using config::RouteConfig;

RouteConfig route(std::string name) {
  RouteConfig r;
  r.name = std::move(name);
  r.path = "routes[x]";
  r.upstream = "u";
  return r;
}

class RouterTest : public ::testing::Test {
 protected:
  void build() {
    config::Diagnostics diag;
    matcher_ = RouteMatcher::build(routes_, diag);
    ASSERT_TRUE(diag.empty()) << diag.format();
  }
  MatchResult match(std::string_view path, std::string_view method = "GET",
                    std::string_view host = "h", std::string_view query = "") {
    return matcher_->match(RequestView{host, method, path, query, &headers_});
  }
  std::string name(std::string_view path, std::string_view method = "GET",
                   std::string_view host = "h", std::string_view query = "") {
    auto m = match(path, method, host, query);
    return m.kind == MatchResult::Kind::Matched ? routes_[m.route->index].name : "-";
  }
  std::vector<RouteConfig> routes_;
  http::HeaderList headers_;
  std::unique_ptr<RouteMatcher> matcher_;
};

TEST_F(RouterTest, PrefixMatchesWholeSegments) {
  auto r = route("users");
  r.match.path_prefix = "/users/";
  routes_.push_back(r);
  build();
  EXPECT_EQ(name("/users"), "users");
  EXPECT_EQ(name("/users/"), "users");
  EXPECT_EQ(name("/users/7/x"), "users");
  EXPECT_EQ(name("/usersX"), "-");
  EXPECT_EQ(name("/"), "-");
}

TEST_F(RouterTest, MostSpecificWins) {
  auto any = route("any");
  auto prefix = route("prefix");
  prefix.match.path_prefix = "/a";
  auto deeper = route("deeper");
  deeper.match.path_prefix = "/a/b";
  auto tmpl = route("tmpl");
  tmpl.match.path = "/a/{x}/c";
  auto exact = route("exact");
  exact.match.path = "/a/b/c";
  auto regex = route("regex");
  regex.match.path_regex = "/a/[0-9]+";
  routes_ = {any, prefix, deeper, tmpl, exact, regex};
  build();
  EXPECT_EQ(name("/z"), "any");
  EXPECT_EQ(name("/a"), "prefix");
  EXPECT_EQ(name("/a/b"), "deeper");
  EXPECT_EQ(name("/a/b/d"), "deeper");
  EXPECT_EQ(name("/a/q/c"), "tmpl");
  EXPECT_EQ(name("/a/b/c"), "exact");
  EXPECT_EQ(name("/a/42"), "regex");
}

TEST_F(RouterTest, PriorityBreaksTiesThenConfigOrder) {
  auto a = route("a");
  a.match.path = "/p";
  auto b = route("b");
  b.match.path = "/p";
  routes_ = {a, b};
  build();
  EXPECT_EQ(name("/p"), "a");
  routes_[1].priority = 1;
  build();
  EXPECT_EQ(name("/p"), "b");
}

TEST_F(RouterTest, HostsExactThenWildcardThenAny) {
  auto exact = route("exact");
  exact.match.hosts = {"api.example.com"};
  auto wild = route("wild");
  wild.match.hosts = {"*.example.com"};
  auto deep = route("deep");
  deep.match.hosts = {"*.eu.example.com"};
  auto any = route("any");
  routes_ = {exact, wild, deep, any};
  build();
  EXPECT_EQ(name("/", "GET", "api.example.com"), "exact");
  EXPECT_EQ(name("/", "GET", "api.example.com:8080"), "exact");
  EXPECT_EQ(name("/", "GET", "shop.example.com"), "wild");
  EXPECT_EQ(name("/", "GET", "shop.eu.example.com"), "deep");
  EXPECT_EQ(name("/", "GET", "example.com"), "any");
}

TEST_F(RouterTest, MethodsHeadersAndQuery) {
  auto post = route("post");
  post.match.path = "/x";
  post.match.methods = {"POST"};
  auto beta = route("beta");
  beta.match.path = "/x";
  beta.match.headers.push_back({"X-Beta", std::string("on"), std::nullopt, true});
  auto q = route("q");
  q.match.path = "/x";
  q.match.query.push_back({"v", std::nullopt, std::string("[0-9]+"), true});
  routes_ = {post, beta, q};
  build();
  EXPECT_EQ(name("/x", "POST"), "post");
  EXPECT_EQ(name("/x", "GET", "h", "v=12"), "q");
  EXPECT_EQ(name("/x", "GET", "h", "v=ab"), "-");
  headers_.add("x-beta", "on");
  EXPECT_EQ(name("/x"), "beta");
}

TEST_F(RouterTest, MethodNotAllowedListsMethods) {
  auto a = route("a");
  a.match.path = "/m";
  a.match.methods = {"PUT", "POST"};
  auto b = route("b");
  b.match.path = "/m";
  b.match.methods = {"GET"};
  routes_ = {a, b};
  build();
  auto m = match("/m", "DELETE");
  EXPECT_EQ(m.kind, MatchResult::Kind::MethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, POST, PUT");
  EXPECT_EQ(match("/n", "DELETE").kind, MatchResult::Kind::NotFound);
}

TEST_F(RouterTest, TemplateParamsAndRewrites) {
  auto t = route("t");
  t.match.path = "/users/{id}/orders/{order}";
  t.rewrite = "/v2/orders/{order}?u={id}";
  auto s = route("s");
  s.match.path_prefix = "/api/v1";
  s.strip_prefix = true;
  auto re = route("re");
  re.match.path_regex = "/files/(?P<name>[a-z]+)";
  re.rewrite = "/blob/{name}";
  routes_ = {t, s, re};
  build();
  auto m = match("/users/7/orders/9");
  ASSERT_EQ(m.kind, MatchResult::Kind::Matched);
  EXPECT_EQ(rewritePath(routes_[0], *m.route, "/users/7/orders/9", m.params), "/v2/orders/9?u=7");
  m = match("/api/v1/items");
  EXPECT_EQ(rewritePath(routes_[1], *m.route, "/api/v1/items", m.params), "/items");
  EXPECT_EQ(rewritePath(routes_[1], *m.route, "/api/v1", m.params), "/");
  m = match("/files/abc");
  EXPECT_EQ(rewritePath(routes_[2], *m.route, "/files/abc", m.params), "/blob/abc");
  EXPECT_EQ(match("/users//orders/9").kind, MatchResult::Kind::NotFound);  // empty param
}

TEST_F(RouterTest, StaticSegmentBeatsParamAndBacktracks) {
  auto a = route("a");
  a.match.path = "/u/me/profile";
  auto b = route("b");
  b.match.path = "/u/{id}/settings";
  routes_ = {a, b};
  build();
  EXPECT_EQ(name("/u/me/profile"), "a");
  EXPECT_EQ(name("/u/me/settings"), "b");  // the static branch fails, the param branch matches
}

TEST_F(RouterTest, InvalidRegexIsReported) {
  auto r = route("bad");
  r.match.path_regex = "(";
  routes_ = {r};
  config::Diagnostics diag;
  RouteMatcher::build(routes_, diag);
  EXPECT_NE(diag.format().find("routes[x].match.path_regex: invalid regular expression"),
            std::string::npos);
}

TEST_F(RouterTest, TenThousandRoutes) {
  for (int i = 0; i < 10000; ++i) {
    auto r = route("r" + std::to_string(i));
    r.match.path_prefix = "/svc" + std::to_string(i);
    routes_.push_back(r);
  }
  build();
  EXPECT_EQ(name("/svc9999/x"), "r9999");
  EXPECT_EQ(name("/svc0"), "r0");
  EXPECT_EQ(name("/svc10000"), "-");
}

}  // namespace
}  // namespace portico::router
