#include "observability/stats_totals.h"

#include <algorithm>

namespace portico::observability {

void HistogramTotals::add(const Histogram& h) {
  const auto b = h.buckets();
  for (std::size_t i = 0; i < b.size(); ++i) buckets[i] += b[i];
  count += h.count();
  sum_ns += h.sumNanos();
}

HistogramTotals HistogramTotals::minus(const HistogramTotals& earlier) const {
  // Counters only grow, but a worker's map entry can be new in this sample: never underflow.
  const auto sub = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
  HistogramTotals d;
  for (std::size_t i = 0; i < buckets.size(); ++i)
    d.buckets[i] = sub(buckets[i], earlier.buckets[i]);
  d.count = sub(count, earlier.count);
  d.sum_ns = sub(sum_ns, earlier.sum_ns);
  return d;
}

double HistogramTotals::quantile(double q) const {
  std::uint64_t total = 0;
  for (auto b : buckets) total += b;
  if (total == 0) return 0;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double below = 0;
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    const double in_bucket = static_cast<double>(buckets[i]);
    if (below + in_bucket >= rank && in_bucket > 0) {
      const double lower = i == 0 ? 0 : Histogram::kBounds[i - 1];
      return lower + (Histogram::kBounds[i] - lower) * ((rank - below) / in_bucket);
    }
    below += in_bucket;
  }
  return Histogram::kBounds.back();
}

std::uint64_t RouteTotals::answered() const {
  std::uint64_t n = 0;
  for (auto c : by_class) n += c;
  return n;
}

std::uint64_t RouteTotals::inFlight() const {
  const std::uint64_t done = answered();
  return started > done ? started - done : 0;
}

Totals sumWorkers(const std::vector<const WorkerStats*>& workers) {
  Totals t;
  for (const auto* w : workers) {
    t.connections_accepted += w->connections_accepted.get();
    t.connections_active += w->connections_active.get();
    t.requests += w->requests.get();
    t.bad_requests += w->bad_requests.get();
    t.tls_handshakes += w->tls_handshakes.get();
    t.tls_handshake_failures += w->tls_handshake_failures.get();
    t.tunnels_active += w->tunnels_active.get();
    t.http2_connections += w->http2_connections.get();
    t.http2_streams += w->http2_streams.get();
    t.http2_protocol_closes += w->http2_protocol_closes.get();
    t.http2_stream_stalls += w->http2_stream_stalls.get();
    w->forEachRoute([&](const std::string& name, const RouteStats& s) {
      auto& r = t.routes[name];
      for (std::size_t i = 0; i < r.by_class.size(); ++i) r.by_class[i] += s.by_class[i].get();
      for (std::size_t i = 0; i < r.auth_failures.size(); ++i)
        r.auth_failures[i] += s.auth_failures[i].get();
      r.duration.add(s.duration);
      r.bytes_in += s.bytes_in.get();
      r.bytes_out += s.bytes_out.get();
      r.started += s.started.get();
    });
    w->forEachUpstream([&](const std::string& name, const UpstreamStats& s) {
      auto& u = t.upstreams[name];
      u.duration.add(s.duration);
      for (std::size_t i = 0; i < u.by_class.size(); ++i) u.by_class[i] += s.by_class[i].get();
      u.bytes_in += s.bytes_in.get();
      u.bytes_out += s.bytes_out.get();
      u.attempts += s.attempts.get();
      u.failures += s.failures.get();
      u.retries += s.retries.get();
      u.ejections += s.ejections.get();
      u.calls += s.calls.get();
      u.mirrored += s.mirrored.get();
      u.mirror_dropped += s.mirror_dropped.get();
      u.server_errors += s.server_errors.get();
    });
    w->forEachConsumer([&](const std::string& name, const ConsumerStats& c) {
      auto& x = t.consumers[name];
      x.requests += c.requests.get();
      x.rejections += c.rejections.get();
    });
    w->forEachFilterEvent(
        [&](const std::string& key, const Counter& c) { t.filter_events[key] += c.get(); });
    w->forEachListener([&](const std::string& name, const ListenerStats& l) {
      auto& x = t.listeners[name];
      x.accepted += l.accepted.get();
      x.active += l.active.get();
    });
  }
  return t;
}

std::vector<std::pair<std::string, ConsumerTotals>> topConsumers(const Totals& totals,
                                                                 std::size_t n) {
  std::vector<std::pair<std::string, ConsumerTotals>> ranked(totals.consumers.begin(),
                                                             totals.consumers.end());
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second.requests > b.second.requests;
  });
  ConsumerTotals other;
  for (std::size_t i = n; i < ranked.size(); ++i) {
    other.requests += ranked[i].second.requests;
    other.rejections += ranked[i].second.rejections;
  }
  if (ranked.size() > n) ranked.resize(n);
  if (other.requests || other.rejections) ranked.push_back({"other", other});
  return ranked;
}

}  // namespace portico::observability
