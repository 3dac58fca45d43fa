#pragma once
// What Portico knows about the health of upstreams, shared by every worker and kept across
// reloads (by upstream name and target address): active check results, passive ejections, the
// circuit breaker and the in-flight counts it limits. Plain atomics: read on every request,
// written on failures and by the checker thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "config/model.h"

namespace portico::upstream {

// Milliseconds on the steady clock (the unit of every deadline below).
std::int64_t steadyMs();

class TargetHealth {
 public:
  // Whether requests may go to this target now.
  bool available(std::int64_t now_ms) const {
    return !active_down_.load(std::memory_order_relaxed) &&
           ejected_until_.load(std::memory_order_relaxed) <= now_ms;
  }

  // Active checks (one checker thread): returns true when the state changed.
  bool probeResult(bool ok, const config::HealthCheckConfig& cfg);
  bool activeDown() const { return active_down_.load(); }

  // Passive checks, after each attempt of a real request.
  void requestSucceeded(std::int64_t now_ms, const config::OutlierConfig& cfg);
  // Returns true when this failure ejected the target.
  bool requestFailed(std::int64_t now_ms, const config::OutlierConfig& cfg);
  std::int64_t ejectedUntil() const { return ejected_until_.load(); }
  std::uint64_t ejections() const { return ejections_total_.load(); }
  int consecutiveFailures() const { return consecutive_failures_.load(); }

 private:
  std::atomic<bool> active_down_{false};
  int probe_successes_ = 0;  // checker thread only
  int probe_failures_ = 0;
  std::atomic<std::int64_t> ejected_until_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<int> ejections_in_a_row_{0};
  std::atomic<std::uint64_t> ejections_total_{0};
};

// Per upstream: in-flight counts and the circuit breaker.
class UpstreamState {
 public:
  enum class Circuit : int { Closed = 0, Open = 1, HalfOpen = 2 };

  // Before touching the upstream: false = answer 503 at once (`why` says which limit).
  bool admit(const config::CircuitBreakerConfig* cb, std::int64_t now_ms, const char*& why);
  // After the request, with whether it failed (5xx, no connection, timeout).
  void finish(const config::CircuitBreakerConfig* cb, bool failed, std::int64_t now_ms);

  // A retry may start: within max_retries and the retry budget.
  bool beginRetry(const config::CircuitBreakerConfig* cb, const config::RetryBudgetConfig* budget);
  void endRetry() { retries_.fetch_sub(1, std::memory_order_relaxed); }

  // A new connection may be opened (max_connections, max_pending): then call connected() or
  // connectFailed().
  bool beginConnect(const config::CircuitBreakerConfig* cb, const char*& why);
  void connectDone() { pending_.fetch_sub(1, std::memory_order_relaxed); }
  std::atomic<std::int64_t>& connections() { return connections_; }
  std::int64_t openConnections() const { return connections_.load(std::memory_order_relaxed); }

  Circuit circuit() const { return static_cast<Circuit>(circuit_.load()); }
  std::int64_t requests() const { return requests_.load(); }
  std::int64_t pending() const { return pending_.load(); }
  std::int64_t retries() const { return retries_.load(); }
  std::uint64_t rejected() const { return rejected_.load(); }
  std::uint64_t opened() const { return opened_.load(); }

 private:
  void open(std::int64_t now_ms, const config::CircuitBreakerConfig& cb);

  std::atomic<std::int64_t> requests_{0};
  std::atomic<std::int64_t> pending_{0};
  std::atomic<std::int64_t> retries_{0};
  std::atomic<std::int64_t> connections_{0};
  std::atomic<int> circuit_{0};
  std::atomic<std::int64_t> open_until_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<int> half_open_in_flight_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> opened_{0};
};

// Process-wide: the health of every target and upstream, found again by name after a reload.
// Held weakly: a reload (built while the old snapshot lives) keeps them; a target or upstream
// no config uses any more is forgotten.
class HealthRegistry {
 public:
  std::shared_ptr<TargetHealth> target(const std::string& upstream, const std::string& address);
  std::shared_ptr<UpstreamState> upstream(const std::string& name);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<TargetHealth>> targets_;
  std::unordered_map<std::string, std::weak_ptr<UpstreamState>> upstreams_;
};

}  // namespace portico::upstream
