#include "filters/subscription/subscription_filter.h"

#include <gtest/gtest.h>

#include "api/filter_registry.h"
#include "api/services.h"
#include "filters/builtins.h"
#include "filters/subscription/usage_book.h"

namespace portico::filters {
namespace {

using State = config::SubscriptionConfig::State;

class NoServices : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return nullptr;
  }
};

struct Plans {
  config::Config cfg;
  api::FilterRegistry registry;
  NoServices services;
  config::Diagnostics diag;
  std::shared_ptr<const api::FilterFactory> factory;

  Plans() {
    registerBuiltins(registry);
    cfg.apis.push_back({});
    cfg.apis[0].name = "items";
    config::PlanConfig free;
    free.name = "free";
    free.apis = {"items"};
    free.limits.push_back({2, std::chrono::minutes(1)});
    free.path = "plans[0]";
    config::PlanConfig other;
    other.name = "other";
    other.apis = {"elsewhere"};
    cfg.plans = {free, other};
    cfg.subscriptions = {{"s1", "app1", "items", "free", State::Active, {}, ""},
                         {"s2", "app2", "items", "free", State::Pending, {}, ""},
                         {"s3", "app3", "items", "free", State::Rejected, {}, ""}};
    static const nlohmann::json kNone;
    api::FilterBuildContext ctx{kNone, "plans", diag, services, nullptr, nullptr};
    factory = makeSubscriptionFactory(cfg.apis[0], cfg, registry, ctx);
  }

  // The status and the answer's status (0 when it went on).
  std::pair<api::FilterStatus, int> call(const char* application) {
    api::Consumer consumer;
    consumer.name = application ? application : "";
    http::RequestHead head;
    api::RequestContext ctx;
    ctx.request = &head;
    ctx.request_id = "rid";
    if (application) ctx.consumer = &consumer;
    auto filter = factory->create();
    auto status = filter->onRequestHeaders(ctx);
    EXPECT_NE(status, api::FilterStatus::Async);  // local counters answer at once
    return {status, status == api::FilterStatus::Reply ? ctx.local_reply.status : 0};
  }
};

TEST(SubscriptionFilter, OnlyActiveSubscriptionsPassAndThePlanLimits) {
  Plans s;
  ASSERT_EQ(s.diag.format(), "");
  ASSERT_TRUE(s.factory);
  EXPECT_EQ(s.call(nullptr), std::make_pair(api::FilterStatus::Reply, 401));
  EXPECT_EQ(s.call("app9"), std::make_pair(api::FilterStatus::Reply, 403));  // none
  EXPECT_EQ(s.call("app2"), std::make_pair(api::FilterStatus::Reply, 403));  // pending
  EXPECT_EQ(s.call("app3"), std::make_pair(api::FilterStatus::Reply, 403));  // rejected
  EXPECT_EQ(s.call("app1"), std::make_pair(api::FilterStatus::Continue, 0));
  EXPECT_EQ(s.call("app1"), std::make_pair(api::FilterStatus::Continue, 0));
  EXPECT_EQ(s.call("app1"), std::make_pair(api::FilterStatus::Reply, 429));  // 2 a minute
}

TEST(SubscriptionFilter, AnApiNoPlanListsGetsNone) {
  Plans s;
  config::ApiConfig lone;
  lone.name = "lone";
  static const nlohmann::json kNone;
  api::FilterBuildContext ctx{kNone, "plans", s.diag, s.services, nullptr, nullptr};
  EXPECT_EQ(makeSubscriptionFactory(lone, s.cfg, s.registry, ctx), nullptr);
}

nlohmann::json reportOf(const UsageBook& book, const std::string& app, std::int64_t today, int days,
                        std::int64_t now_unix = 0) {
  return UsageBook::report(book.peek(app, today - UsageBook::kDays), today, days, now_unix);
}

TEST(UsageBook, CountsPerApplicationApiAndDayAcrossWorkers) {
  UsageBook book;
  const std::int64_t today = UsageBook::dayOf(std::chrono::system_clock::time_point{} +
                                              std::chrono::hours(24 * 20000 + 5));
  using std::chrono::milliseconds;
  for (int i = 0; i < 19; ++i) book.record(i % 3, "app1", "items", today, 200, milliseconds(2));
  book.record(1, "app1", "items", today, 429, milliseconds(40));
  book.record(0, "app1", "items", today - 1, 502, milliseconds(3));
  book.record(0, "app2", "items", today, 200, milliseconds(1));
  const auto r = reportOf(book, "app1", today, 7)["data"];
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0]["day"], "2024-10-04");  // newest first
  EXPECT_EQ(r[0]["requests"], 20);
  EXPECT_EQ(r[0]["errors_4xx"], 1);
  EXPECT_NEAR(r[0]["p95_ms"].get<double>(), 2.0, 0.25);  // 19 of 20 at 2 ms
  EXPECT_EQ(r[1]["errors_5xx"], 1);
  EXPECT_EQ(reportOf(book, "app1", today, 1)["data"].size(), 1u);
  // A day long past is dropped once newer days come.
  book.record(0, "app1", "items", today + UsageBook::kDays, 200, milliseconds(1));
  EXPECT_EQ(reportOf(book, "app1", today, 7)["data"].size(), 1u);  // that shard forgot day - 1
}

TEST(UsageBook, TakenRecordsMergeLikeTheBookAndKeepTheQuotaSeenLast) {
  UsageBook book;
  const std::int64_t today = 20000;
  const std::int64_t now = today * 86400 + 3600;
  using std::chrono::milliseconds;
  book.record(0, "app1", "items", today, 200, milliseconds(2), {100, 60, now + 600, now * 1000});
  book.record(1, "app1", "items", today, 200, milliseconds(2),
              {100, 59, now + 599, now * 1000 + 1});
  book.record(2, "app1", "items", today, 503, milliseconds(9));  // an answer without quota
  // Another worker's answer in the same microsecond: the fewer left is the later one.
  book.record(3, "app1", "items", today, 200, milliseconds(2),
              {100, 58, now + 599, now * 1000 + 1});
  auto taken = book.take();
  ASSERT_EQ(taken.size(), 1u);       // the shards' records merged
  EXPECT_TRUE(book.take().empty());  // forgotten once taken
  EXPECT_TRUE(book.peek("app1", 0).empty());
  // Merged as a store would (another node's record for the same day added too).
  nlohmann::json stored;
  for (const auto& r : taken) UsageBook::merge(stored, r.value);
  UsageBook::merge(stored, {{"requests", 5}, {"errors_4xx", 5}, {"latency", {{"3", 5}}}});
  EXPECT_EQ(stored["requests"], 9);
  EXPECT_EQ(stored["errors_4xx"], 5);
  EXPECT_EQ(stored["errors_5xx"], 1);
  EXPECT_EQ(stored["quota"]["remaining"], 58);  // the later answer's figure
  const auto r = UsageBook::report({{"app1", "items", today, stored}}, today, 7, now);
  EXPECT_EQ(r["data"][0]["requests"], 9);
  EXPECT_EQ(r["quota"], (nlohmann::json{{{"api", "items"},
                                         {"limit", 100},
                                         {"remaining", 58},
                                         {"resets_at", "2024-10-04T01:09:59Z"}}}));
  // Once its period is over, all of the quota is left.
  const auto later =
      UsageBook::report({{"app1", "items", today, stored}}, today + 1, 7, now + 86400);
  EXPECT_EQ(later["quota"][0]["remaining"], 100);
  EXPECT_FALSE(later["quota"][0].contains("resets_at"));
}

}  // namespace
}  // namespace portico::filters
