#include <gtest/gtest.h>

#include "filters/quota/quota_filter.h"

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
