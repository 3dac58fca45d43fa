#include "observability/stats_history.h"

#include <cmath>

#include <gtest/gtest.h>

namespace portico::observability {
namespace {

HistogramTotals histogramOf(std::initializer_list<std::pair<std::size_t, std::uint64_t>> counts) {
  HistogramTotals h;
  for (auto [bucket, n] : counts) {
    h.buckets[bucket] += n;
    h.count += n;
  }
  return h;
}

TEST(HistogramTotalsTest, QuantileInterpolatesInsideTheBucketLikePrometheus) {
  // 100 observations in (1ms, 2.5ms]: the median is halfway through that bucket.
  const auto h = histogramOf({{2, 100}});
  EXPECT_DOUBLE_EQ(h.quantile(0.5), 0.001 + 0.0015 * 0.5);
  EXPECT_DOUBLE_EQ(h.quantile(1.0), 0.0025);
  EXPECT_EQ(HistogramTotals{}.quantile(0.99), 0);
  // 90 fast, 10 slow: p50 among the fast ones, p99 among the slow ones.
  const auto mixed = histogramOf({{0, 90}, {9, 10}});
  EXPECT_LE(mixed.quantile(0.5), 0.0005);
  EXPECT_GT(mixed.quantile(0.99), 0.25);
  EXPECT_LE(mixed.quantile(0.99), 0.5);
  // Past the largest bound: the largest finite bound.
  EXPECT_EQ(histogramOf({{Histogram::kBounds.size(), 3}}).quantile(0.5), Histogram::kBounds.back());
}

TEST(HistogramTotalsTest, MinusNeverUnderflows) {
  const auto later = histogramOf({{1, 5}});
  const auto earlier = histogramOf({{1, 2}, {3, 1}});
  const auto d = later.minus(earlier);
  EXPECT_EQ(d.buckets[1], 3u);
  EXPECT_EQ(d.buckets[3], 0u);
  EXPECT_EQ(d.count, 2u);
}

RouteTotals routeWith(std::uint64_t ok, std::uint64_t client_errors, std::uint64_t server_errors) {
  RouteTotals r;
  r.by_class[2] = ok;
  r.by_class[4] = client_errors;
  r.by_class[5] = server_errors;
  r.duration = histogramOf({{4, ok + client_errors + server_errors}});
  r.started = ok + client_errors + server_errors;
  return r;
}

TEST(StatsHistoryTest, PointsAreRatesOverTheIntervalSinceTheLastSample) {
  StatsHistory history(10);
  Totals t;
  t.routes["a"] = routeWith(0, 0, 0);
  history.sample(t, 1000);  // the baseline: no point yet
  EXPECT_TRUE(history.times().empty());
  t.routes["a"] = routeWith(16, 2, 2);
  history.sample(t, 3000);
  ASSERT_EQ(history.times().size(), 1u);
  const SeriesPoint& p = history.route("a")->back();
  EXPECT_FLOAT_EQ(p.per_second, 10);  // 20 answers in 2 s
  EXPECT_FLOAT_EQ(p.error_ratio, 0.1f);
  EXPECT_FLOAT_EQ(p.client_error_ratio, 0.1f);
  EXPECT_GT(p.p50_ms, 5);
  EXPECT_LE(p.p99_ms, 10);
  EXPECT_FLOAT_EQ(history.overall().back().per_second, 10);
  // A quiet interval: no rate, and no latency to show (NaN, drawn as a gap).
  history.sample(t, 5000);
  EXPECT_EQ(history.route("a")->back().per_second, 0);
  EXPECT_TRUE(std::isnan(history.route("a")->back().p50_ms));
}

TEST(StatsHistoryTest, SeriesFollowTheRoutesOfEachSampleAndKeepTheirLength) {
  StatsHistory history(3);
  Totals t;
  t.routes["a"] = routeWith(0, 0, 0);
  history.sample(t, 0);
  history.sample(t, 1000);
  t.routes["b"] = routeWith(4, 0, 0);  // new: zeros before its first point
  history.sample(t, 2000);
  ASSERT_NE(history.route("b"), nullptr);
  EXPECT_EQ(history.route("b")->size(), 2u);
  EXPECT_FLOAT_EQ(history.route("b")->back().per_second, 4);
  t.routes.erase("a");  // removed by a reload: its series goes, and it is no negative traffic
  for (int i = 3; i < 8; ++i) history.sample(t, i * 1000);
  EXPECT_EQ(history.route("a"), nullptr);
  EXPECT_EQ(history.times().size(), 3u);  // capacity
  EXPECT_EQ(history.route("b")->size(), 3u);
  EXPECT_EQ(history.overall().size(), 3u);
  EXPECT_GE(history.overall().back().per_second, 0);
}

TEST(StatsTotalsTest, TopConsumersKeepsNAndSumsTheRestAsOther) {
  Totals t;
  t.consumers["a"] = {10, 1};
  t.consumers["b"] = {30, 0};
  t.consumers["c"] = {20, 2};
  const auto top = topConsumers(t, 2);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].first, "b");
  EXPECT_EQ(top[1].first, "c");
  EXPECT_EQ(top[2].first, "other");
  EXPECT_EQ(top[2].second.requests, 10u);
  EXPECT_EQ(top[2].second.rejections, 1u);
}

TEST(RecentErrorsTest, KeepsTheLastErrorsOldestFirst) {
  RecentErrors errors;
  for (int i = 0; i < 40; ++i)
    errors.record(i, 500 + i % 3, "GET", "/p" + std::to_string(i), "r", "id", "");
  const auto list = errors.list();
  ASSERT_EQ(list.size(), RecentErrors::kCapacity);
  EXPECT_EQ(list.front().path, "/p8");
  EXPECT_EQ(list.back().path, "/p39");
  EXPECT_EQ(list.back().unix_ms, 39);
}

}  // namespace
}  // namespace portico::observability
