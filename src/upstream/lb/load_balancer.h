#pragma once
// Target selection. A LoadBalancer is per worker and per upstream (its state is never shared
// between threads); consistent-hash tables are immutable and shared through the snapshot.
#include <cstdint>
#include <memory>
#include <vector>

#include "config/model.h"
#include "core/rng.h"

namespace portico::upstream {

// Targets already tried for this request (by index); empty means none.
using Excluded = std::vector<char>;

inline bool isExcluded(const Excluded& ex, std::size_t i) {
  return i < ex.size() && ex[i];
}

class ConsistentHash;

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Returns a target index not excluded, or -1 when every target is excluded.
  // `hash_key` is only used by consistent hashing.
  virtual int pick(std::uint64_t hash_key, const Excluded& excluded) = 0;
  // In-flight accounting (used by least_request).
  virtual void onStart(int) {}
  virtual void onFinish(int) {}
  // Exchanges holding this balancer across their attempts (BalancerUse): a worker's own
  // count, no atomics.
  int users = 0;
};

// One exchange's hold on a balancer from its first pick to its last attempt's end. A reload
// may replace the balancer in the worker's table meanwhile; a held one is kept until its last
// user lets go (WorkerContext::balancer), so the exchange never picks from, or finishes an
// attempt on, a freed one.
class BalancerUse {
 public:
  explicit BalancerUse(LoadBalancer& lb) : lb_(&lb) { ++lb_->users; }
  ~BalancerUse() { --lb_->users; }
  BalancerUse(const BalancerUse&) = delete;
  BalancerUse& operator=(const BalancerUse&) = delete;
  LoadBalancer* operator->() const { return lb_; }

 private:
  LoadBalancer* lb_;
};

std::unique_ptr<LoadBalancer> makeLoadBalancer(config::Balance balance,
                                               const std::vector<std::uint32_t>& weights,
                                               std::shared_ptr<const ConsistentHash> table,
                                               std::uint64_t seed);

using portico::Rng;

std::uint64_t hash64(const void* data, std::size_t len);
inline std::uint64_t hash64(std::string_view s) {
  return hash64(s.data(), s.size());
}

}  // namespace portico::upstream
