#pragma once
// Every worker's counters summed into plain values: what /metrics renders and what the
// dashboard's history samples. Summing locks each worker's name maps briefly (never the
// request path).
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "observability/metrics.h"

namespace portico::observability {

struct HistogramTotals {
  std::array<std::uint64_t, Histogram::kBounds.size() + 1> buckets{};  // non-cumulative
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;

  void add(const Histogram& h);
  HistogramTotals minus(const HistogramTotals& earlier) const;
  // The q-quantile (0..1) in seconds, interpolated inside its bucket as Prometheus's
  // histogram_quantile does; 0 when empty, the largest finite bound past it.
  double quantile(double q) const;
};

struct RouteTotals {
  std::array<std::uint64_t, 6> by_class{};  // index = status / 100
  std::array<std::uint64_t, 5> auth_failures{};
  HistogramTotals duration;
  std::uint64_t bytes_in = 0, bytes_out = 0, started = 0;

  std::uint64_t answered() const;
  std::uint64_t inFlight() const;
};

struct UpstreamTotals {
  HistogramTotals duration;
  std::array<std::uint64_t, 6> by_class{};
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t attempts = 0, failures = 0, retries = 0, ejections = 0, server_errors = 0;
  std::uint64_t calls = 0, mirrored = 0, mirror_dropped = 0;
};

struct ConsumerTotals {
  std::uint64_t requests = 0, rejections = 0;
};

struct ListenerTotals {
  std::uint64_t accepted = 0, active = 0;
};

struct Totals {
  std::uint64_t connections_accepted = 0, connections_active = 0, requests = 0, bad_requests = 0,
                tls_handshakes = 0, tls_handshake_failures = 0, tunnels_active = 0,
                http2_connections = 0, http2_streams = 0, http2_protocol_closes = 0,
                http2_stream_stalls = 0;
  std::map<std::string, RouteTotals> routes;
  std::map<std::string, UpstreamTotals> upstreams;
  std::map<std::string, ConsumerTotals> consumers;
  std::map<std::string, ListenerTotals> listeners;
  std::map<std::string, std::uint64_t> filter_events;  // "filter\nevent"
};

Totals sumWorkers(const std::vector<const WorkerStats*>& workers);

// The top `n` consumers by requests (ties by name), the rest summed as "other" when any.
std::vector<std::pair<std::string, ConsumerTotals>> topConsumers(const Totals& totals,
                                                                 std::size_t n);

}  // namespace portico::observability
