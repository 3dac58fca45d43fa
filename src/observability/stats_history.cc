#include "observability/stats_history.h"

#include <cmath>

namespace portico::observability {
namespace {

float ratio(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.f : static_cast<float>(static_cast<double>(part) / whole);
}

void setLatency(SeriesPoint& p, const HistogramTotals& d) {
  const float none = std::nanf("");
  p.p50_ms = d.count ? static_cast<float>(d.quantile(0.50) * 1000) : none;
  p.p95_ms = d.count ? static_cast<float>(d.quantile(0.95) * 1000) : none;
  p.p99_ms = d.count ? static_cast<float>(d.quantile(0.99) * 1000) : none;
}

SeriesPoint routePoint(const RouteTotals& now, const RouteTotals& before, double seconds) {
  SeriesPoint p;
  std::array<std::uint64_t, 6> d{};
  for (std::size_t i = 0; i < d.size(); ++i)
    d[i] = now.by_class[i] > before.by_class[i] ? now.by_class[i] - before.by_class[i] : 0;
  std::uint64_t answered = 0;
  for (auto c : d) answered += c;
  p.per_second = static_cast<float>(answered / seconds);
  p.error_ratio = ratio(d[5] + d[0], answered);
  p.client_error_ratio = ratio(d[4], answered);
  setLatency(p, now.duration.minus(before.duration));
  return p;
}

SeriesPoint upstreamPoint(const UpstreamTotals& now, const UpstreamTotals& before, double seconds) {
  const auto sub = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
  SeriesPoint p;
  const std::uint64_t attempts = sub(now.attempts, before.attempts);
  p.per_second = static_cast<float>(attempts / seconds);
  p.error_ratio = ratio(
      sub(now.failures, before.failures) + sub(now.server_errors, before.server_errors), attempts);
  setLatency(p, now.duration.minus(before.duration));
  return p;
}

// Appends `point` to the series of every name in `now`, creating (zero-padded) and dropping
// series so they match the names of `now`.
template <class Totals, class PointOf>
void appendAll(std::map<std::string, Series>& series, const std::map<std::string, Totals>& now,
               const std::map<std::string, Totals>& before, std::size_t length, PointOf pointOf) {
  for (auto it = series.begin(); it != series.end();)
    it = now.count(it->first) ? std::next(it) : series.erase(it);
  static const Totals kZero{};
  for (const auto& [name, t] : now) {
    Series& s = series[name];
    while (s.size() + 1 < length) s.push_front(SeriesPoint{});
    const auto b = before.find(name);
    s.push_back(pointOf(t, b == before.end() ? kZero : b->second));
  }
}

template <class Map>
void trim(Map& series, std::size_t capacity) {
  for (auto& [_, s] : series)
    while (s.size() > capacity) s.pop_front();
}

}  // namespace

void StatsHistory::sample(const Totals& totals, std::int64_t unix_ms) {
  if (!primed_ || unix_ms <= last_ms_) {
    primed_ = true;
    last_ms_ = unix_ms;
    last_ = totals;
    return;
  }
  const double seconds = static_cast<double>(unix_ms - last_ms_) / 1000.0;
  times_.push_back(unix_ms);
  const std::size_t length = times_.size();
  appendAll(routes_, totals.routes, last_.routes, length,
            [&](const RouteTotals& n, const RouteTotals& b) { return routePoint(n, b, seconds); });
  appendAll(upstreams_, totals.upstreams, last_.upstreams, length,
            [&](const UpstreamTotals& n, const UpstreamTotals& b) {
              return upstreamPoint(n, b, seconds);
            });
  RouteTotals all_now, all_before;
  const auto sumInto = [](RouteTotals& all, const std::map<std::string, RouteTotals>& routes) {
    for (const auto& [_, r] : routes) {
      for (std::size_t i = 0; i < all.by_class.size(); ++i) all.by_class[i] += r.by_class[i];
      for (std::size_t i = 0; i < all.duration.buckets.size(); ++i)
        all.duration.buckets[i] += r.duration.buckets[i];
      all.duration.count += r.duration.count;
    }
  };
  sumInto(all_now, totals.routes);
  // Only routes still present count on both sides, so a removed route is no negative traffic.
  std::map<std::string, RouteTotals> kept;
  for (const auto& [name, r] : last_.routes)
    if (totals.routes.count(name)) kept.emplace(name, r);
  sumInto(all_before, kept);
  while (overall_.size() + 1 < length) overall_.push_front(SeriesPoint{});
  overall_.push_back(routePoint(all_now, all_before, seconds));

  while (times_.size() > capacity_) times_.pop_front();
  while (overall_.size() > capacity_) overall_.pop_front();
  trim(routes_, capacity_);
  trim(upstreams_, capacity_);
  last_ms_ = unix_ms;
  last_ = totals;
}

const Series* StatsHistory::route(const std::string& name) const {
  auto it = routes_.find(name);
  return it == routes_.end() ? nullptr : &it->second;
}

const Series* StatsHistory::upstream(const std::string& name) const {
  auto it = upstreams_.find(name);
  return it == upstreams_.end() ? nullptr : &it->second;
}

}  // namespace portico::observability
