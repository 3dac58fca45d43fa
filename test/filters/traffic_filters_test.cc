#include <gtest/gtest.h>

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
