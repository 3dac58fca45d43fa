#include "upstream/health.h"

#include <algorithm>

namespace portico::upstream {

std::int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool TargetHealth::probeResult(bool ok, const config::HealthCheckConfig& cfg) {
  if (ok) {
    probe_failures_ = 0;
    ++probe_successes_;
    if (active_down_.load() && probe_successes_ >= static_cast<int>(cfg.healthy_threshold)) {
      active_down_.store(false);
      return true;
    }
    return false;
  }
  probe_successes_ = 0;
  ++probe_failures_;
  if (!active_down_.load() && probe_failures_ >= static_cast<int>(cfg.unhealthy_threshold)) {
    active_down_.store(true);
    return true;
  }
  return false;
}

void TargetHealth::requestSucceeded(std::int64_t now_ms, const config::OutlierConfig& cfg) {
  if (consecutive_failures_.load(std::memory_order_relaxed) != 0)
    consecutive_failures_.store(0, std::memory_order_relaxed);
  // Healthy for a whole max_ejection after the last ejection: the next one starts short again.
  if (ejections_in_a_row_.load(std::memory_order_relaxed) != 0 &&
      now_ms > ejected_until_.load(std::memory_order_relaxed) + cfg.max_ejection.count())
    ejections_in_a_row_.store(0, std::memory_order_relaxed);
}

bool TargetHealth::requestFailed(std::int64_t now_ms, const config::OutlierConfig& cfg) {
  const int n = consecutive_failures_.fetch_add(1) + 1;
  if (n < static_cast<int>(cfg.consecutive_failures)) return false;
  if (ejected_until_.load() > now_ms) return false;  // already out
  consecutive_failures_.store(0);
  const int times = std::min(ejections_in_a_row_.fetch_add(1), 20);
  const std::int64_t ms =
      std::min<std::int64_t>(cfg.base_ejection.count() << times, cfg.max_ejection.count());
  ejected_until_.store(now_ms + ms);
  ejections_total_.fetch_add(1);
  return true;
}

void UpstreamState::open(std::int64_t now_ms, const config::CircuitBreakerConfig& cb) {
  open_until_.store(now_ms + cb.open_duration.count());
  if (circuit_.exchange(static_cast<int>(Circuit::Open)) != static_cast<int>(Circuit::Open))
    opened_.fetch_add(1);
  consecutive_failures_.store(0);
}

bool UpstreamState::admit(const config::CircuitBreakerConfig* cb, std::int64_t now_ms,
                          const char*& why) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (!cb) return true;
  auto refuse = [&](const char* reason) {
    requests_.fetch_sub(1, std::memory_order_relaxed);
    rejected_.fetch_add(1, std::memory_order_relaxed);
    why = reason;
    return false;
  };
  if (cb->max_requests && requests_.load(std::memory_order_relaxed) > cb->max_requests)
    return refuse("upstream overloaded (circuit breaker: max_requests)");
  if (cb->failure_threshold == 0) return true;
  int state = circuit_.load();
  if (state == static_cast<int>(Circuit::Open)) {
    if (now_ms < open_until_.load()) return refuse("upstream circuit open");
    // The open time is over: the first request here turns it half-open.
    circuit_.compare_exchange_strong(state, static_cast<int>(Circuit::HalfOpen));
    state = circuit_.load();
  }
  if (state == static_cast<int>(Circuit::HalfOpen)) {
    if (half_open_in_flight_.fetch_add(1) >= static_cast<int>(cb->half_open_requests)) {
      half_open_in_flight_.fetch_sub(1);
      return refuse("upstream circuit open");
    }
  }
  return true;
}

void UpstreamState::finish(const config::CircuitBreakerConfig* cb, bool failed,
                           std::int64_t now_ms) {
  requests_.fetch_sub(1, std::memory_order_relaxed);
  if (!cb || cb->failure_threshold == 0) return;
  const int state = circuit_.load();
  if (state == static_cast<int>(Circuit::HalfOpen)) {
    half_open_in_flight_.fetch_sub(1);
    if (failed) {
      open(now_ms, *cb);
    } else {
      consecutive_failures_.store(0);
      circuit_.store(static_cast<int>(Circuit::Closed));
    }
    return;
  }
  if (state != static_cast<int>(Circuit::Closed)) return;
  if (!failed) {
    if (consecutive_failures_.load(std::memory_order_relaxed) != 0)
      consecutive_failures_.store(0, std::memory_order_relaxed);
    return;
  }
  if (consecutive_failures_.fetch_add(1) + 1 >= static_cast<int>(cb->failure_threshold))
    open(now_ms, *cb);
}

bool UpstreamState::beginRetry(const config::CircuitBreakerConfig* cb,
                               const config::RetryBudgetConfig* budget) {
  const std::int64_t n = retries_.fetch_add(1, std::memory_order_relaxed) + 1;
  bool ok = true;
  if (cb && cb->max_retries && n > cb->max_retries) ok = false;
  if (ok && budget) {
    const double allowed = std::max<double>(
        budget->min_concurrent,
        budget->percent / 100.0 * static_cast<double>(requests_.load(std::memory_order_relaxed)));
    if (static_cast<double>(n) > allowed) ok = false;
  }
  if (!ok) {
    retries_.fetch_sub(1, std::memory_order_relaxed);
    rejected_.fetch_add(1, std::memory_order_relaxed);
  }
  return ok;
}

bool UpstreamState::beginConnect(const config::CircuitBreakerConfig* cb, const char*& why) {
  if (cb && cb->max_connections &&
      connections_.load(std::memory_order_relaxed) >= cb->max_connections) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    why = "upstream overloaded (circuit breaker: max_connections)";
    return false;
  }
  const std::int64_t n = pending_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (cb && cb->max_pending && n > cb->max_pending) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    rejected_.fetch_add(1, std::memory_order_relaxed);
    why = "upstream overloaded (circuit breaker: max_pending)";
    return false;
  }
  return true;
}

std::shared_ptr<TargetHealth> HealthRegistry::target(const std::string& upstream,
                                                     const std::string& address) {
  std::lock_guard lock(mu_);
  std::erase_if(targets_, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = targets_[upstream + "|" + address];
  auto health = slot.lock();
  if (!health) {
    health = std::make_shared<TargetHealth>();
    slot = health;
  }
  return health;
}

std::shared_ptr<UpstreamState> HealthRegistry::upstream(const std::string& name) {
  std::lock_guard lock(mu_);
  std::erase_if(upstreams_, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = upstreams_[name];
  auto state = slot.lock();
  if (!state) {
    state = std::make_shared<UpstreamState>();
    slot = state;
  }
  return state;
}

}  // namespace portico::upstream
