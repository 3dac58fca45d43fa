#pragma once
// Per-worker counters, summed when /metrics is scraped. Each counter is written by one thread
// only (a relaxed load + store, no locked instruction); the scraper reads with relaxed loads.
// Maps of per-route/per-upstream stats are only locked when a new name first appears (at config
// install) and while scraping, never per request.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "observability/counter.h"
#include "observability/release_stats.h"

namespace portico::observability {

class Histogram {
 public:
  // Upper bounds in seconds.
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  void observe(std::chrono::nanoseconds d);
  std::array<std::uint64_t, kBounds.size() + 1> buckets() const;  // non-cumulative, +Inf last
  std::uint64_t count() const { return count_.get(); }
  std::uint64_t sumNanos() const { return sum_ns_.get(); }

 private:
  std::array<Counter, kBounds.size() + 1> buckets_;
  Counter count_;
  Counter sum_ns_;
};

struct RouteStats {
  std::array<Counter, 6> by_class;  // index = status / 100 (0 for none)
  // Requests refused by auth and access filters, by api::AuthFailure (0 unused).
  std::array<Counter, 5> auth_failures;
  Histogram duration;  // whole request: head read to response end
  Counter bytes_in;    // request body bytes
  Counter bytes_out;   // response bytes, heads included
  Counter started;     // started - answered (by_class summed) = in flight
};

struct UpstreamStats {
  Histogram duration;               // per attempt: connect to the end of the response head
  std::array<Counter, 6> by_class;  // response heads received, by status / 100 (retried ones too)
  Counter bytes_in;                 // request body bytes sent (a request's last attempt)
  Counter bytes_out;                // response bytes relayed from the upstream to clients
  Counter attempts;
  Counter failures;  // connect errors, resets, timeouts
  Counter retries;
  Counter ejections;       // targets ejected by outlier detection
  Counter server_errors;   // attempts answered with a 5xx
  Counter calls;           // upstream calls made by filters (not the routes' own requests)
  Counter mirrored;        // mirrored copies sent (traffic-mirror)
  Counter mirror_dropped;  // copies not sent: max_in_flight reached, or the body too large
};

struct ConsumerStats {
  Counter requests;
  Counter rejections;  // answered 4xx/5xx by Portico itself (rate limit, quota, acl...)
};

struct ListenerStats {
  Counter accepted;
  Counter active;
};

// A response that was an error (4xx, 5xx, or none sent), as the dashboard lists them.
struct ErrorEvent {
  std::int64_t unix_ms = 0;
  int status = 0;
  std::string method, path, route, request_id, detail;
};

// The last errors a worker answered: a small ring written by that worker only. The lock is
// uncontended but for the moment the admin listener copies it out; slots reuse their strings.
class RecentErrors {
 public:
  static constexpr std::size_t kCapacity = 32;
  void record(std::int64_t unix_ms, int status, std::string_view method, std::string_view path,
              std::string_view route, std::string_view request_id, std::string_view detail);
  std::vector<ErrorEvent> list() const;  // oldest first

 private:
  mutable std::mutex mu_;
  std::array<ErrorEvent, kCapacity> ring_;
  std::size_t next_ = 0;
  std::size_t size_ = 0;
};

class WorkerStats {
 public:
  Counter connections_accepted;
  Counter connections_active;
  Counter requests;
  Counter bad_requests;
  Counter tls_handshakes;
  Counter tls_handshake_failures;
  Counter tunnels_active;  // upgraded (WebSocket) connections open now
  Counter http2_connections;
  Counter http2_streams;
  Counter http2_protocol_closes;  // connections ended for abuse or protocol errors (GOAWAY)
  Counter http2_stream_stalls;    // streams reset: the client kept the flow-control window shut
  RecentErrors recent_errors;
  // While a config release runs: requests on each side (index ReleaseSide).
  std::array<ReleaseSideStats, 2> release_sides;

  RouteStats& route(const std::string& name);
  UpstreamStats& upstream(const std::string& name);
  // Looked up once per connection (not per request).
  ListenerStats& listener(const std::string& name);
  // Looked up when a snapshot is installed (not per request).
  ConsumerStats& consumer(const std::string& name);
  // Events a filter counts (rare ones: looked up by name when they happen), keyed
  // "filter\nevent".
  Counter& filterEvent(std::string_view filter, std::string_view event);

  template <class F>
  void forEachRoute(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [name, s] : routes_) f(name, *s);
  }
  template <class F>
  void forEachConsumer(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [name, s] : consumers_) f(name, *s);
  }
  template <class F>
  void forEachListener(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [name, s] : listeners_) f(name, *s);
  }
  template <class F>
  void forEachFilterEvent(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [key, c] : filter_events_) f(key, *c);
  }
  template <class F>
  void forEachUpstream(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [name, s] : upstreams_) f(name, *s);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<RouteStats>> routes_;
  std::map<std::string, std::unique_ptr<UpstreamStats>> upstreams_;
  std::map<std::string, std::unique_ptr<ListenerStats>> listeners_;
  std::map<std::string, std::unique_ptr<ConsumerStats>> consumers_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> filter_events_;
};

struct ProcessStats {
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  std::atomic<std::uint64_t> config_reloads{0};
  std::atomic<std::uint64_t> config_reload_failures{0};
  std::atomic<std::uint64_t> config_version{0};
  std::atomic<std::uint32_t> consumers_top{0};  // from the live config
  std::atomic<std::uint64_t> log_lines_dropped{0};
};

// Prometheus text-format pieces, for other parts that add their own series.
std::string escapeLabel(const std::string& v);
void line(std::string& out, const char* name, const std::string& labels, double value);
void family(std::string& out, const char* name, const char* type, const char* help);

// The same exposition in OpenMetrics 1.0: counter families named without `_total` in their
// HELP/TYPE lines, and the closing `# EOF`.
std::string toOpenMetrics(const std::string& prometheus_text);

// Process figures read from /proc.
double residentBytes();
struct ProcessUsage {
  double cpu_seconds = 0;
  double open_fds = 0;
};
ProcessUsage processUsage();

struct Totals;
// Renders every worker's counters, summed, in the Prometheus text format (0.0.4).
std::string renderPrometheus(const Totals& totals, const ProcessStats& process);

}  // namespace portico::observability
