#include "observability/release_stats.h"

#include <cmath>

namespace portico::observability {

std::size_t FineLatency::bucketOf(std::chrono::nanoseconds d) {
  const double s = std::chrono::duration<double>(d).count();
  if (s <= kFirstBound) return 0;
  const auto i = static_cast<std::size_t>(std::ceil(std::log(s / kFirstBound) / std::log(kGrowth)));
  return i < kBuckets ? i : kBuckets - 1;
}

double FineLatency::upperBound(std::size_t bucket) {
  return kFirstBound * std::pow(kGrowth, static_cast<double>(bucket));
}

void ReleaseTotals::add(const ReleaseSideStats& s) {
  requests += s.requests.get();
  errors_5xx += s.errors_5xx.get();
  for (std::size_t i = 0; i < latency.size(); ++i) latency[i] += s.latency.at(i);
}

ReleaseTotals ReleaseTotals::since(const ReleaseTotals& earlier) const {
  ReleaseTotals d;
  d.requests = requests - earlier.requests;
  d.errors_5xx = errors_5xx - earlier.errors_5xx;
  for (std::size_t i = 0; i < latency.size(); ++i) d.latency[i] = latency[i] - earlier.latency[i];
  return d;
}

double ReleaseTotals::quantileMs(double q) const {
  std::uint64_t total = 0;
  for (auto n : latency) total += n;
  if (total == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < latency.size(); ++i) {
    seen += latency[i];
    if (seen >= rank) return FineLatency::upperBound(i) * 1000;
  }
  return FineLatency::upperBound(latency.size() - 1) * 1000;
}

}  // namespace portico::observability
