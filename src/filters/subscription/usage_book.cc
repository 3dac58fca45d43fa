#include "filters/subscription/usage_book.h"

#include <cmath>
#include <ctime>

namespace portico::filters {

std::int64_t UsageBook::dayOf(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count() / 24;
}

void UsageBook::record(int worker, const std::string& application, const std::string& api,
                       std::int64_t day, int status, std::chrono::nanoseconds latency) {
  Shard& s = shards_[static_cast<std::size_t>(worker) % shards_.size()];
  std::lock_guard lock(s.mu);
  Counts& c = s.counts[{application, day, api}];
  ++c.requests;
  if (status >= 400 && status < 500) ++c.errors_4xx;
  if (status >= 500 || status == 0) ++c.errors_5xx;
  ++c.latency[observability::FineLatency::bucketOf(latency)];
  // Old days go as new ones come (a day's first request in a shard pays for it).
  if (c.requests == 1)
    std::erase_if(s.counts, [&](const auto& e) { return std::get<1>(e.first) <= day - kDays; });
}

nlohmann::json UsageBook::report(const std::string& application, std::int64_t today,
                                 int days) const {
  std::map<std::pair<std::int64_t, std::string>, Counts, std::greater<>> merged;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.counts.lower_bound({application, today - days + 1, ""});
         it != s.counts.end() && std::get<0>(it->first) == application &&
         std::get<1>(it->first) <= today;
         ++it) {
      Counts& m = merged[{std::get<1>(it->first), std::get<2>(it->first)}];
      m.requests += it->second.requests;
      m.errors_4xx += it->second.errors_4xx;
      m.errors_5xx += it->second.errors_5xx;
      for (std::size_t i = 0; i < m.latency.size(); ++i) m.latency[i] += it->second.latency[i];
    }
  }
  nlohmann::json data = nlohmann::json::array();
  for (const auto& [key, c] : merged) {
    observability::ReleaseTotals t;  // its quantile over the same buckets
    t.requests = c.requests;
    for (std::size_t i = 0; i < c.latency.size(); ++i) t.latency[i] = c.latency[i];
    const std::time_t secs = key.first * 86400;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char date[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    data.push_back({{"day", date},
                    {"api", key.second},
                    {"requests", c.requests},
                    {"errors_4xx", c.errors_4xx},
                    {"errors_5xx", c.errors_5xx},
                    {"p95_ms", std::round(t.quantileMs(0.95) * 100) / 100}});
  }
  return {{"data", std::move(data)}};
}

}  // namespace portico::filters
