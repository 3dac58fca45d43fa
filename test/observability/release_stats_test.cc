#include "observability/release_stats.h"

#include <gtest/gtest.h>

namespace portico::observability {
namespace {

using namespace std::chrono_literals;

TEST(ReleaseStats, BucketsAreWithinTenPercent) {
  for (std::chrono::nanoseconds d : {60us, 300us, 1000us, 7000us, 250000us, 3000000us}) {
    const double s = std::chrono::duration<double>(d).count();
    const double bound = FineLatency::upperBound(FineLatency::bucketOf(d));
    EXPECT_GE(bound, s * 0.999);
    EXPECT_LE(bound, s * 1.1 + 1e-9);
  }
  EXPECT_EQ(FineLatency::bucketOf(0ns), 0u);
  EXPECT_EQ(FineLatency::bucketOf(std::chrono::hours(1)), FineLatency::kBuckets - 1);
}

TEST(ReleaseStats, TotalsSubtractAndGiveQuantiles) {
  ReleaseSideStats side;
  for (int i = 0; i < 98; ++i) side.record(200, 2ms);
  side.record(502, 2ms);
  side.record(0, 40ms);  // no answer counts as a failure
  ReleaseTotals before;
  before.add(side);
  EXPECT_EQ(before.requests, 100u);
  EXPECT_EQ(before.errors_5xx, 2u);
  EXPECT_NEAR(before.quantileMs(0.99), 2.0, 0.2);
  EXPECT_NEAR(before.quantileMs(1.0), 40.0, 4.0);
  for (int i = 0; i < 10; ++i) side.record(200, 9ms);
  ReleaseTotals after;
  after.add(side);
  const ReleaseTotals interval = after.since(before);
  EXPECT_EQ(interval.requests, 10u);
  EXPECT_EQ(interval.errors_5xx, 0u);
  EXPECT_NEAR(interval.quantileMs(0.99), 9.0, 0.9);
  EXPECT_EQ(ReleaseTotals{}.quantileMs(0.99), 0);
}

}  // namespace
}  // namespace portico::observability
