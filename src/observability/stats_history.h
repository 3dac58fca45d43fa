#pragma once
// The last minutes of traffic for the dashboard: every `sample` turns the counters' growth
// since the previous sample into one point per route, per upstream and for all traffic.
// Owned and used by the control thread only.
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "observability/stats_totals.h"

namespace portico::observability {

struct SeriesPoint {
  float per_second = 0;          // requests (routes) or attempts (upstreams) per second
  float error_ratio = 0;         // 5xx or no response (routes); failures and 5xx (upstreams)
  float client_error_ratio = 0;  // 4xx (routes only)
  float p50_ms = 0, p95_ms = 0, p99_ms = 0;  // NaN when nothing was answered in the interval
};

using Series = std::deque<SeriesPoint>;

class StatsHistory {
 public:
  explicit StatsHistory(std::size_t capacity) : capacity_(capacity) {}

  // Series of names absent from `totals` are dropped (a reload removed them); a name new in
  // `totals` gets zeros before its first point, so every series is as long as times().
  void sample(const Totals& totals, std::int64_t unix_ms);

  const std::deque<std::int64_t>& times() const { return times_; }
  const Series& overall() const { return overall_; }
  const Series* route(const std::string& name) const;
  const Series* upstream(const std::string& name) const;

 private:
  std::size_t capacity_;
  bool primed_ = false;
  std::int64_t last_ms_ = 0;
  Totals last_;
  std::deque<std::int64_t> times_;
  Series overall_;
  std::map<std::string, Series> routes_;
  std::map<std::string, Series> upstreams_;
};

}  // namespace portico::observability
