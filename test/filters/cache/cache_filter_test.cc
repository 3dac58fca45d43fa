#include "filters/cache/cache_filter.h"

#include <gtest/gtest.h>

#include <map>

#include "api/filter_registry.h"
#include "api/services.h"
#include "filters/builtins.h"
#include "filters/cache/cache_store.h"

namespace portico::filters {
namespace {

using std::chrono::seconds;

class TestServices : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return nullptr;
  }
  const TimeSource& time() override { return clock; }
  std::shared_ptr<void> shared(const std::string& key,
                               const std::function<std::shared_ptr<void>()>& make) override {
    auto& slot = objects[key];
    if (!slot) slot = make();
    return slot;
  }
  ManualTime clock;
  std::map<std::string, std::shared_ptr<void>> objects;
};

// One request through the filter: its request phase, then (unless answered from the cache)
// the upstream's answer `status`/`headers`/`body` through its response phase and transforms.
struct Exchange {
  http::RequestHead req;
  http::ResponseHead resp;
  api::RequestContext ctx;
  api::FilterStatus request_status{};
  std::string body;  // what the client gets

  Exchange(const api::FilterFactory& f, std::string path,
           std::initializer_list<std::pair<const char*, const char*>> headers = {},
           std::string method = "GET") {
    req.method = std::move(method);
    req.host = "example.com";
    req.path = std::move(path);
    for (const auto& [n, v] : headers) req.headers.add(n, v);
    ctx.request = &req;
    ctx.route_name = "r";
    filter = f.create();
    request_status = filter->onRequestHeaders(ctx);
  }
  ~Exchange() { filter->onLog(ctx); }

  bool answeredFromCache() const { return request_status == api::FilterStatus::Reply; }
  const http::HeaderList& headers() const {
    return answeredFromCache() ? ctx.local_reply.headers : resp.headers;
  }
  std::string header(const char* name) const {
    const std::string* v = headers().find(name);
    return v ? *v : "";
  }

  void upstream(int status, std::initializer_list<std::pair<const char*, const char*>> headers,
                std::string payload) {
    resp.status = status;
    for (const auto& [n, v] : headers) resp.headers.add(n, v);
    resp.framing = http::BodyFraming::ContentLength;
    resp.content_length = payload.size();
    ctx.response = &resp;
    filter->onResponseHeaders(ctx);
    std::string piece = std::move(payload), out, error;
    for (auto& t : ctx.response_transforms) {
      out.clear();
      ASSERT_TRUE(t->transform(piece, true, out, error)) << error;
      if (!t->observesOnly()) piece = out;
    }
    body = piece;
  }
  std::string cachedBody() const {
    return ctx.local_reply.shared_body ? *ctx.local_reply.shared_body : ctx.local_reply.body;
  }

  api::FilterPtr filter;
};

struct Cache {
  TestServices services;
  std::shared_ptr<const api::FilterFactory> factory;
  std::string errors;

  explicit Cache(const nlohmann::json& config) {
    api::FilterRegistry registry;
    registerBuiltins(registry);
    config::Diagnostics diag;
    api::FilterBuildContext ctx{config, "plugins[0].config", diag, services, nullptr};
    factory = registry.find("cache")->build(ctx);
    errors = diag.format();
  }
  cache::CacheStore& store() { return *processCacheStore(services, false); }
};

TEST(CacheFilter, StoresAMissAndAnswersTheNextFromTheStore) {
  Cache c(nlohmann::json{{"ttl", "60s"}});
  ASSERT_TRUE(c.factory) << c.errors;
  {
    Exchange miss(*c.factory, "/a");
    EXPECT_EQ(miss.request_status, api::FilterStatus::Continue);
    miss.upstream(200, {{"Content-Type", "text/plain"}, {"ETag", "\"v1\""}}, "hello");
    EXPECT_EQ(miss.header("cache-status"), "portico; fwd=miss; stored");
    EXPECT_EQ(miss.body, "hello");
  }
  c.services.clock.advance(seconds(5));
  Exchange hit(*c.factory, "/a");
  ASSERT_TRUE(hit.answeredFromCache());
  EXPECT_EQ(hit.ctx.local_reply.status, 200);
  EXPECT_EQ(hit.cachedBody(), "hello");
  EXPECT_EQ(hit.header("cache-status"), "portico; hit; ttl=55");
  EXPECT_EQ(hit.header("age"), "5");
  EXPECT_EQ(hit.header("etag"), "\"v1\"");
  EXPECT_EQ(hit.header("content-type"), "text/plain");
  EXPECT_EQ(c.store().totals().events[static_cast<int>(cache::CacheStore::Event::Hit)], 1u);
}

TEST(CacheFilter, KeyIsMethodHostPathAndTheConfiguredParts) {
  Cache c(nlohmann::json{{"key", {{"query", {"lang"}}, {"headers", {"Accept-Language"}}}}});
  ASSERT_TRUE(c.factory) << c.errors;
  {
    Exchange miss(*c.factory, "/a", {{"Accept-Language", "fr"}});
    miss.req.query = "page=1&lang=en";
    miss.filter = c.factory->create();  // again, with the query
    miss.filter->onRequestHeaders(miss.ctx);
    miss.upstream(200, {}, "fr-en");
  }
  {
    Exchange other_page(*c.factory, "/a", {{"Accept-Language", "fr"}});
    other_page.req.query = "page=2&lang=en";  // page is not part of the key
    other_page.filter = c.factory->create();
    EXPECT_EQ(other_page.filter->onRequestHeaders(other_page.ctx), api::FilterStatus::Reply);
    EXPECT_EQ(*other_page.ctx.local_reply.shared_body, "fr-en");
  }
  Exchange other_language(*c.factory, "/a", {{"Accept-Language", "de"}});
  EXPECT_FALSE(other_language.answeredFromCache());
  EXPECT_EQ(c.store().purge({cache::Purge::Kind::Key, "GET example.com/a?lang=en"}), 1u);
}

TEST(CacheFilter, NeverStoresCookiesPrivateErrorsOrCredentials) {
  Cache c(nlohmann::json{{"ttl", "60s"}});
  struct Case {
    const char* path;
    int status;
    std::pair<const char*, const char*> header;
    const char* detail;
  };
  for (const Case& k : {Case{"/cookie", 200, {"Set-Cookie", "a=b"}, "set-cookie"},
                        Case{"/private", 200, {"Cache-Control", "private"}, "private"},
                        Case{"/nostore", 200, {"Cache-Control", "no-store"}, "no-store"},
                        Case{"/error", 503, {"X", "y"}, "status"}}) {
    {
      Exchange miss(*c.factory, k.path);
      miss.upstream(k.status, {k.header}, "x");
      EXPECT_EQ(miss.header("cache-status"), std::string("portico; fwd=miss; detail=") + k.detail);
    }
    Exchange again(*c.factory, k.path);
    EXPECT_FALSE(again.answeredFromCache()) << k.path;
  }
  {
    Exchange with_credentials(*c.factory, "/auth", {{"Authorization", "Bearer x"}});
    with_credentials.upstream(200, {}, "secret");
    EXPECT_EQ(with_credentials.header("cache-status"), "portico; fwd=miss; detail=authorization");
  }
  Exchange anonymous(*c.factory, "/auth");
  EXPECT_FALSE(anonymous.answeredFromCache());
}

TEST(CacheFilter, StaleWhileRevalidateThenStaleIfError) {
  Cache c(
      nlohmann::json{{"ttl", "10s"}, {"stale_while_revalidate", "30s"}, {"stale_if_error", "10m"}});
  ASSERT_TRUE(c.factory) << c.errors;
  { Exchange(*c.factory, "/a").upstream(200, {{"Content-Type", "text/plain"}}, "v1"); }
  c.services.clock.advance(seconds(15));
  {
    Exchange stale(*c.factory, "/a");
    ASSERT_TRUE(stale.answeredFromCache());
    EXPECT_EQ(stale.header("cache-status"), "portico; hit; ttl=-5");
    EXPECT_EQ(stale.cachedBody(), "v1");
  }
  c.services.clock.advance(seconds(60));  // past stale-while-revalidate
  {
    Exchange down(*c.factory, "/a");
    EXPECT_FALSE(down.answeredFromCache());
    down.upstream(503, {{"Content-Type", "application/json"}}, R"({"error":"down"})");
    EXPECT_EQ(down.resp.status, 200);
    EXPECT_EQ(down.header("cache-status"), "portico; fwd=stale; fwd-status=503");
    EXPECT_EQ(down.header("content-type"), "text/plain");
    EXPECT_EQ(down.body, "v1");
  }
  c.services.clock.advance(seconds(600));  // past stale-if-error too
  Exchange gone(*c.factory, "/a");
  gone.upstream(503, {}, "down");
  EXPECT_EQ(gone.resp.status, 503);
  EXPECT_EQ(gone.body, "down");
}

TEST(CacheFilter, ConditionalRequestsAnswered304FromTheStore) {
  Cache c(nlohmann::json{{"ttl", "60s"}});
  { Exchange(*c.factory, "/a").upstream(200, {{"ETag", "\"v1\""}}, "hello"); }
  Exchange revalidate(*c.factory, "/a", {{"If-None-Match", "\"v1\""}});
  ASSERT_TRUE(revalidate.answeredFromCache());
  EXPECT_EQ(revalidate.ctx.local_reply.status, 304);
  EXPECT_EQ(revalidate.header("etag"), "\"v1\"");
  EXPECT_EQ(revalidate.ctx.local_reply.shared_body, nullptr);
  Exchange changed(*c.factory, "/a", {{"If-None-Match", "\"v0\""}});
  EXPECT_EQ(changed.ctx.local_reply.status, 200);
}

TEST(CacheFilter, AnEncodedAnswerGoesOnlyToClientsThatAskedTheSame) {
  Cache c(nlohmann::json{{"ttl", "60s"}});
  {
    Exchange gz(*c.factory, "/a", {{"Accept-Encoding", "gzip"}});
    gz.upstream(200, {{"Content-Encoding", "gzip"}}, "GZIP");
  }
  Exchange identity(*c.factory, "/a");
  EXPECT_FALSE(identity.answeredFromCache());
  Exchange gz(*c.factory, "/a", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(gz.answeredFromCache());
  EXPECT_EQ(gz.cachedBody(), "GZIP");
}

TEST(CacheFilter, TagsAreRenderedPerRequestForPurge) {
  Cache c(nlohmann::json{{"tags", {"user:{request.path.id}", "all-users"}}});
  ASSERT_TRUE(c.factory) << c.errors;
  for (const char* id : {"1", "2"}) {
    Exchange miss(*c.factory, std::string("/users/") + id);
    miss.ctx.path_params = {{"id", id}};
    miss.upstream(200, {}, id);
  }
  EXPECT_EQ(c.store().purge({cache::Purge::Kind::Tag, "user:2"}), 1u);
  EXPECT_TRUE(Exchange(*c.factory, "/users/1").answeredFromCache());
  EXPECT_FALSE(Exchange(*c.factory, "/users/2").answeredFromCache());
  EXPECT_EQ(c.store().purge({cache::Purge::Kind::Tag, "all-users"}), 1u);
}

TEST(CacheFilter, ValidatesItsConfig) {
  Cache bad(nlohmann::json{{"methods", {"POST"}},
                           {"statuses", {200, 500}},
                           {"tags", {"{request.body.x}"}},
                           {"memory", "16MiB"},
                           {"max_entry", "4MiB"},
                           {"bogus", 1}});
  EXPECT_EQ(bad.factory, nullptr);
  for (const char* expected :
       {"methods: \"POST\": only GET and HEAD", "methods: must include GET",
        "statuses[1]: must be a status from 200 to 499", "tags[0]: {request.body.x}",
        "max_entry: must be at most an eighth of memory", "bogus: unknown key"})
    EXPECT_NE(bad.errors.find(expected), std::string::npos) << expected << "\n" << bad.errors;
}

}  // namespace
}  // namespace portico::filters
