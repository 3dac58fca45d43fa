#include <gtest/gtest.h>

#include "api/filter_registry.h"
#include "api/services.h"
#include "filters/builtins.h"
#include "filters/quota/quota_filter.h"
#include "filters/rate_limit/key_spec.h"
#include "http/codec/message_head.h"

namespace portico::filters {
namespace {

TEST(QuotaPeriod, CalendarPeriodsInUtc) {
  const std::int64_t t = 1796083200 + 13 * 3600 + 125;  // 2026-12-01T13:02:05Z
  auto h = periodAt(QuotaPeriod::Hour, t);
  EXPECT_EQ(h.id, "2026-12-01T13");
  EXPECT_EQ(h.ends, 1796083200 + 14 * 3600);
  auto d = periodAt(QuotaPeriod::Day, t);
  EXPECT_EQ(d.id, "2026-12-01");
  EXPECT_EQ(d.ends, 1796083200 + 86400);
  auto m = periodAt(QuotaPeriod::Month, 1798761599);  // 2026-12-31T23:59:59Z
  EXPECT_EQ(m.id, "2026-12");
  EXPECT_EQ(m.ends, 1798761600);  // 2027-01-01T00:00:00Z
}

}  // namespace
}  // namespace portico::filters

namespace portico::filters {
namespace {

std::string keyOf(const std::vector<KeyPart>& parts, const api::RequestContext& ctx) {
  std::string out;
  buildKey(parts, ctx, out);
  return out;
}

TEST(KeySpec, PartsJoinedAndFallbacks) {
  config::Diagnostics diag;
  nlohmann::json spec = {"consumer", "header:X-Tenant", "claim:org", "route"};
  auto parts = readKeySpec(&spec, "key", diag, KeyPart::Kind::Ip);
  ASSERT_TRUE(diag.empty()) << diag.format();
  ASSERT_EQ(parts.size(), 4u);

  http::RequestHead req;
  // A token whose payload is {"org":"acme","n":7} (the signature is not read here).
  req.headers.add("Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJvcmciOiJhY21lIiwibiI6N30.x");
  req.headers.add("X-Tenant", "t1");
  api::RequestContext ctx;
  ctx.request = &req;
  ctx.client_ip = "10.0.0.9";
  ctx.route_name = "orders";
  // No consumer: keyed by the client address instead.
  EXPECT_EQ(keyOf(parts, ctx), "ip:10.0.0.9|t1|acme|orders");
  api::Consumer alice{"alice", "", {"gold"}, "gold"};
  ctx.consumer = &alice;
  EXPECT_EQ(keyOf(parts, ctx), "alice|t1|acme|orders");

  nlohmann::json other = {"claim:n", "header:Missing", "consumer_group"};
  auto more = readKeySpec(&other, "key", diag, KeyPart::Kind::Ip);
  EXPECT_EQ(keyOf(more, ctx), "7|-|gold");
}

TEST(KeySpec, UnknownPartIsAnError) {
  config::Diagnostics diag;
  nlohmann::json spec = "cookie:session";
  readKeySpec(&spec, "plugins[0].config.key", diag, KeyPart::Kind::Ip);
  ASSERT_FALSE(diag.empty());
  EXPECT_NE(diag.format().find("unknown key part"), std::string::npos);
}

}  // namespace
}  // namespace portico::filters

namespace portico::filters {
namespace {

// The rate-limit filter on request start times the test chooses (as a worker's injected clock
// gives them): windows pass without sleeping.
class RateLimitClock : public ::testing::Test {
 protected:
  struct NoSinks : api::Services {
    std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
      return nullptr;
    }
  };

  void build(const nlohmann::json& config) {
    api::FilterRegistry registry;
    registerBuiltins(registry);
    config::Diagnostics diag;
    api::FilterBuildContext b{config, "p.config", diag, services_, nullptr};
    factory_ = registry.find("rate-limit")->build(b);
    ASSERT_TRUE(diag.empty()) << diag.format();
  }

  // One request from `client` at `at` after the start: its status (200 when let through), and
  // the reply's headers when refused.
  int send(const std::string& client, std::chrono::milliseconds at,
           http::HeaderList* out = nullptr) {
    http::RequestHead req;
    req.method = "GET";
    req.target = req.path = "/";
    req.headers.add("X-Client", client);
    api::RequestContext ctx;
    ctx.request = &req;
    ctx.client_ip = "10.0.0.1";
    ctx.start = t0_ + at;
    auto filter = factory_->create();
    if (filter->onRequestHeaders(ctx) == api::FilterStatus::Continue) return 200;
    if (out) *out = ctx.local_reply.headers;
    return ctx.local_reply.status;
  }

  NoSinks services_;
  std::shared_ptr<const api::FilterFactory> factory_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

TEST_F(RateLimitClock, SeveralLimitsPerKeyEachWithItsWindow) {
  build({{"limits", {{{"requests", 3}, {"per", "1s"}}, {{"requests", 4}, {"per", "1m"}}}},
         {"key", "header:X-Client"}});
  using std::chrono::milliseconds;
  for (const std::string client : {"a", "b"}) {
    for (int i = 0; i < 3; ++i) EXPECT_EQ(send(client, milliseconds(i)), 200) << client;
    EXPECT_EQ(send(client, milliseconds(3)), 429) << client;
  }
  // A second on, the per-second limit has room again; the per-minute one has one left.
  EXPECT_EQ(send("a", milliseconds(1200)), 200);
  http::HeaderList refused;
  EXPECT_EQ(send("a", milliseconds(1201), &refused), 429);
  EXPECT_EQ(*refused.find("ratelimit-limit"), "4");
  EXPECT_GE(std::stoi(*refused.find("retry-after")), 50);
}

TEST_F(RateLimitClock, TokenBucketRefillsOneTokenPerInterval) {
  build({{"limits", {{{"requests", 4}, {"per", "1s"}}}},
         {"algorithm", "token_bucket"},
         {"key", {"ip"}}});
  using std::chrono::milliseconds;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(send("x", milliseconds(0)), 200);
  EXPECT_EQ(send("x", milliseconds(0)), 429);
  EXPECT_EQ(send("x", milliseconds(249)), 429);
  EXPECT_EQ(send("x", milliseconds(250)), 200);  // one token back every 250 ms
  EXPECT_EQ(send("x", milliseconds(251)), 429);
}

}  // namespace
}  // namespace portico::filters
