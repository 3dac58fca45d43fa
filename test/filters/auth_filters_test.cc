// The auth and access filters in isolation: config validation, and each filter's decision on a
// hand-made request (the e2e tests cover them through the proxy).
#include <gtest/gtest.h>

#include "core/sha256.h"

#include "api/filter_registry.h"
#include "api/services.h"
#include "auth/consumer_directory.h"
#include "filters/builtins.h"
#include "filters/ip_restriction/ip_restriction_filter.h"

namespace portico::filters {
namespace {

// No log sinks and no HTTP client; blocking work runs inline (the Services defaults).
class InlineServices : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return nullptr;
  }
};

struct Setup {
  InlineServices services;
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  std::shared_ptr<const api::FilterFactory> factory;
  std::string errors;
};

std::unique_ptr<Setup> build(const std::string& name, const nlohmann::json& config,
                             const nlohmann::json& consumers = nlohmann::json::array()) {
  auto s = std::make_unique<Setup>();
  config::Diagnostics diag;
  std::vector<config::ConsumerConfig> list;
  for (std::size_t i = 0; i < consumers.size(); ++i) {
    config::ConsumerConfig c;
    c.name = consumers[i]["name"];
    if (consumers[i].contains("groups")) c.groups = consumers[i]["groups"];
    if (consumers[i].contains("credentials")) c.credentials = consumers[i]["credentials"];
    c.path = "consumers[" + std::to_string(i) + "]";
    list.push_back(c);
  }
  s->consumers = auth::ConsumerDirectory::build(list, diag);
  api::FilterRegistry registry;
  registerBuiltins(registry);
  api::FilterBuildContext ctx{config, "p.config", diag, s->services, s->consumers};
  s->factory = registry.find(name)->build(ctx);
  s->errors = diag.format();
  return s;
}

struct Request {
  http::RequestHead head;
  api::RequestContext ctx;
  Request(std::string method, std::string target) {
    head.method = std::move(method);
    head.target = target;
    auto q = target.find('?');
    head.path = target.substr(0, q);
    if (q != std::string::npos) head.query = target.substr(q + 1);
    ctx.request = &head;
    ctx.client_ip = "127.0.0.1";
    ctx.request_id = "rid";
  }
};

api::FilterStatus run(const Setup& s, Request& r) {
  auto filter = s.factory->create();
  return filter->onRequestHeaders(r.ctx);
}

TEST(KeyAuth, AcceptsKnownKeysFromHeaderOrQueryAndRefusesOthers) {
  auto s =
      build("key-auth", {{"hide_credentials", true}},
            {{{"name", "alice"}, {"credentials", {{"key-auth", {{{"key", "alice-key-123"}}}}}}}});
  ASSERT_EQ(s->errors, "");
  Request header("GET", "/");
  header.head.headers.add("apikey", "alice-key-123");
  EXPECT_EQ(run(*s, header), api::FilterStatus::Continue);
  EXPECT_EQ(header.ctx.consumer->name, "alice");
  EXPECT_FALSE(header.head.headers.has("apikey"));  // hidden
  Request query("GET", "/x?a=1&apikey=alice-key-123");
  EXPECT_EQ(run(*s, query), api::FilterStatus::Continue);
  EXPECT_EQ(query.head.query, "a=1");
  Request missing("GET", "/");
  EXPECT_EQ(run(*s, missing), api::FilterStatus::AuthFailed);
  EXPECT_EQ(missing.ctx.local_reply.status, 401);
  EXPECT_EQ(missing.ctx.auth_failure, api::AuthFailure::MissingCredentials);
  Request wrong("GET", "/");
  wrong.head.headers.add("apikey", "alice-key-124");
  EXPECT_EQ(run(*s, wrong), api::FilterStatus::AuthFailed);
  EXPECT_EQ(wrong.ctx.auth_failure, api::AuthFailure::InvalidCredentials);
  EXPECT_EQ(wrong.ctx.local_reply.body.find("alice-key"), std::string::npos);
}

TEST(KeyAuth, AKeyMayBeStoredAsItsSha256Only) {
  const std::string digest = sha256Hex("bob-key-98765");
  auto s = build("key-auth", nlohmann::json::object(),
                 {{{"name", "bob"}, {"credentials", {{"key-auth", {{{"key_sha256", digest}}}}}}}});
  ASSERT_EQ(s->errors, "");
  Request r("GET", "/");
  r.head.headers.add("apikey", "bob-key-98765");
  EXPECT_EQ(run(*s, r), api::FilterStatus::Continue);
  EXPECT_EQ(r.ctx.consumer->name, "bob");
  Request wrong("GET", "/");
  wrong.head.headers.add("apikey", digest);  // the digest is not the key
  EXPECT_EQ(run(*s, wrong), api::FilterStatus::AuthFailed);

  auto bad =
      build("key-auth", nlohmann::json::object(),
            {{{"name", "a"}, {"credentials", {{"key-auth", {{{"key_sha256", "abc"}}}}}}},
             {{"name", "b"},
              {"credentials", {{"key-auth", {{{"key", "b-key-1234"}, {"key_sha256", digest}}}}}}},
             {{"name", "c"},
              {"credentials", {{"key-auth", {{{"key_sha256", sha256Hex("b-key-1234")}}}}}}}});
  EXPECT_NE(bad->errors.find("consumers[0].credentials.key-auth[0].key_sha256: must be 64 "
                             "hexadecimal digits"),
            std::string::npos)
      << bad->errors;
  EXPECT_NE(bad->errors.find("consumers[1].credentials.key-auth[0]: give one of key, key_sha256"),
            std::string::npos)
      << bad->errors;
}

TEST(KeyAuth, ConfigErrors) {
  auto s = build("key-auth", {{"header", ""}, {"query", ""}, {"bogus", 1}});
  EXPECT_NE(s->errors.find("p.config: give a header or a query parameter"), std::string::npos);
  EXPECT_NE(s->errors.find("p.config.bogus: unknown key"), std::string::npos) << s->errors;
}

TEST(BasicAuth, ChecksSha512CryptAndRefusesMalformedHeaders) {
  // openssl passwd -6 -salt saltsalt s3cret
  const std::string hash =
      "$6$saltsalt$As4wrv0kZlfch1du9WeH7qhskyLriQWySXrZzynnvi46nFnNxjdpl6ksRegrrKexvhIa/"
      "Iny8S8uF3fVWTMuC1";
  auto s = build(
      "basic-auth", {{"realm", "api"}},
      {{{"name", "bob"},
        {"credentials", {{"basic-auth", {{{"username", "bob"}, {"password_hash", hash}}}}}}}});
  ASSERT_EQ(s->errors, "");
  auto decide = [&](const std::string& header) {
    Request r("GET", "/");
    if (!header.empty()) r.head.headers.add("Authorization", header);
    auto filter = s->factory->create();
    auto status = filter->onRequestHeaders(r.ctx);
    if (status == api::FilterStatus::Async)  // hashing: runs inline with these services
      filter->onRequestHeadersAsync(r.ctx, [&](api::FilterStatus st) { status = st; });
    return std::make_pair(status, r.ctx.consumer ? r.ctx.consumer->name : std::string());
  };
  EXPECT_EQ(decide("Basic Ym9iOnMzY3JldA=="),
            std::make_pair(api::FilterStatus::Continue, std::string("bob")));
  EXPECT_EQ(decide("Basic Ym9iOm5vcGU=").first, api::FilterStatus::AuthFailed);  // bob:nope
  EXPECT_EQ(decide("Basic bm9ib2R5OnMzY3JldA==").first, api::FilterStatus::AuthFailed);
  EXPECT_EQ(decide("Basic !!!").first, api::FilterStatus::AuthFailed);
  EXPECT_EQ(decide("Bearer x").first, api::FilterStatus::AuthFailed);
  EXPECT_EQ(decide("").first, api::FilterStatus::AuthFailed);
}

TEST(Acl, AllowAndDenyByGroup) {
  auto s = build("acl", {{"allow", {"gold"}}, {"deny", {"banned"}}});
  ASSERT_EQ(s->errors, "");
  api::Consumer gold{"a", "", {"gold"}, "gold"}, both{"b", "", {"gold", "banned"}, ""},
      other{"c", "", {"bronze"}, ""};
  for (auto [consumer, expected] :
       {std::pair{&gold, api::FilterStatus::Continue}, std::pair{&both, api::FilterStatus::Reply},
        std::pair{&other, api::FilterStatus::Reply},
        std::pair{static_cast<api::Consumer*>(nullptr), api::FilterStatus::Reply}}) {
    Request r("GET", "/");
    r.ctx.consumer = consumer;
    EXPECT_EQ(run(*s, r), expected);
    if (expected == api::FilterStatus::Reply) {
      EXPECT_EQ(r.ctx.local_reply.status, 403);
    }
  }
  EXPECT_NE(build("acl", nlohmann::json::object())->errors.find("give allow or deny"),
            std::string::npos);
}

TEST(IpRestriction, CidrMatching) {
  auto v4 = parseCidr("10.1.0.0/16");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains(*parseAddress("10.1.200.3")));
  EXPECT_FALSE(v4->contains(*parseAddress("10.2.0.1")));
  EXPECT_TRUE(v4->contains(*parseAddress("::ffff:10.1.0.9")));  // IPv4-mapped peer
  auto v6 = parseCidr("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*parseAddress("2001:db8:1::5")));
  EXPECT_FALSE(v6->contains(*parseAddress("2001:db9::5")));
  EXPECT_TRUE(parseCidr("127.0.0.1")->contains(*parseAddress("127.0.0.1")));
  EXPECT_FALSE(parseCidr("10.0.0.0/33"));
  EXPECT_FALSE(parseCidr("10.0.0/8"));
  EXPECT_FALSE(parseCidr("::1/129"));
  EXPECT_FALSE(parseAddress("not-an-ip"));
}

TEST(Cors, PreflightAnsweredAndOriginsMatched) {
  auto s = build("cors", {{"origins", {"https://*.example.com"}},
                          {"origins_regex", {"https://dev-[0-9]+\\.test"}},
                          {"max_age", "1m"}});
  ASSERT_EQ(s->errors, "");
  Request pre("OPTIONS", "/x");
  pre.head.headers.add("Origin", "https://a.example.com");
  pre.head.headers.add("Access-Control-Request-Method", "PUT");
  EXPECT_EQ(run(*s, pre), api::FilterStatus::Reply);
  EXPECT_EQ(pre.ctx.local_reply.status, 204);
  EXPECT_EQ(*pre.ctx.local_reply.headers.find("access-control-allow-origin"),
            "https://a.example.com");
  EXPECT_EQ(*pre.ctx.local_reply.headers.find("access-control-max-age"), "60");
  Request evil("OPTIONS", "/x");
  evil.head.headers.add("Origin", "https://example.com.evil.net");
  evil.head.headers.add("Access-Control-Request-Method", "PUT");
  EXPECT_EQ(run(*s, evil), api::FilterStatus::Reply);
  EXPECT_FALSE(evil.ctx.local_reply.headers.has("access-control-allow-origin"));
  auto bad = build("cors", {{"origins", {"example.com"}}, {"origins_regex", {"("}}});
  EXPECT_NE(bad->errors.find("p.config.origins[0]"), std::string::npos) << bad->errors;
  EXPECT_NE(bad->errors.find("p.config.origins_regex[0]: invalid regex"), std::string::npos);
}

}  // namespace
}  // namespace portico::filters
