#pragma once
// quota: a number of requests per calendar period (hour, day, month; UTC) per key, kept in
// Redis so that restarts and other nodes share it. X-Quota-Remaining on every answer; 429 with
// Retry-After (until the period ends) once it is used up. See docs/filters/quota.md.
#include <cstdint>
#include <string>

#include "api/filter.h"

namespace portico::filters {

api::FilterType quotaFilterType();

enum class QuotaPeriod { Hour, Day, Month };

// The period containing `unix_seconds`: its id ("2026-11", "2026-11-26", "2026-11-26T13") and
// when it ends (unix seconds).
struct PeriodWindow {
  std::string id;
  std::int64_t ends = 0;
};
PeriodWindow periodAt(QuotaPeriod period, std::int64_t unix_seconds);

}  // namespace portico::filters
