#include "upstream/lb/load_balancer.h"

#include <cstring>

#include "upstream/lb/consistent_hash.h"

namespace portico::upstream {

std::uint64_t hash64(const void* data, std::size_t len) {
  // FNV-1a, then a murmur3 finaliser for avalanche; stable across processes and nodes.
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

namespace {

// nginx's smooth weighted round robin: spreads a heavy target's turns evenly.
class RoundRobin final : public LoadBalancer {
 public:
  explicit RoundRobin(const std::vector<std::uint32_t>& weights)
      : weights_(weights.begin(), weights.end()), current_(weights.size(), 0) {}

  int pick(std::uint64_t, const Excluded& excluded) override {
    std::int64_t total = 0;
    int best = -1;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      if (isExcluded(excluded, i)) continue;
      current_[i] += weights_[i];
      total += weights_[i];
      if (best < 0 || current_[i] > current_[static_cast<std::size_t>(best)])
        best = static_cast<int>(i);
    }
    if (best >= 0) current_[static_cast<std::size_t>(best)] -= total;
    return best;
  }

 private:
  std::vector<std::int64_t> weights_;
  std::vector<std::int64_t> current_;
};

// Weighted random choice among the targets not excluded.
int weightedRandom(const std::vector<std::uint32_t>& weights, const Excluded& excluded, Rng& rng) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (!isExcluded(excluded, i)) total += weights[i];
  if (total == 0) return -1;
  std::uint64_t r = rng.below(total);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (isExcluded(excluded, i)) continue;
    if (r < weights[i]) return static_cast<int>(i);
    r -= weights[i];
  }
  return -1;
}

class Random final : public LoadBalancer {
 public:
  Random(const std::vector<std::uint32_t>& weights, std::uint64_t seed)
      : weights_(weights), rng_(seed) {}
  int pick(std::uint64_t, const Excluded& excluded) override {
    return weightedRandom(weights_, excluded, rng_);
  }

 private:
  std::vector<std::uint32_t> weights_;
  Rng rng_;
};

// Power of two choices: two weighted-random candidates, the one with fewer requests in flight
// (relative to its weight) wins.
class LeastRequest final : public LoadBalancer {
 public:
  LeastRequest(const std::vector<std::uint32_t>& weights, std::uint64_t seed)
      : weights_(weights), inflight_(weights.size(), 0), rng_(seed) {}

  int pick(std::uint64_t, const Excluded& excluded) override {
    int a = weightedRandom(weights_, excluded, rng_);
    if (a < 0) return -1;
    int b = weightedRandom(weights_, excluded, rng_);
    if (b < 0 || a == b) return a;
    auto load = [&](int i) {
      auto u = static_cast<std::size_t>(i);
      return static_cast<double>(inflight_[u] + 1) / weights_[u];
    };
    return load(b) < load(a) ? b : a;
  }
  void onStart(int i) override { ++inflight_[static_cast<std::size_t>(i)]; }
  void onFinish(int i) override {
    auto& n = inflight_[static_cast<std::size_t>(i)];
    if (n > 0) --n;
  }

 private:
  std::vector<std::uint32_t> weights_;
  std::vector<std::uint64_t> inflight_;
  Rng rng_;
};

class HashBalancer final : public LoadBalancer {
 public:
  explicit HashBalancer(std::shared_ptr<const ConsistentHash> table) : table_(std::move(table)) {}
  int pick(std::uint64_t key, const Excluded& excluded) override {
    return table_->lookup(key, excluded);
  }

 private:
  std::shared_ptr<const ConsistentHash> table_;
};

}  // namespace

std::unique_ptr<LoadBalancer> makeLoadBalancer(config::Balance balance,
                                               const std::vector<std::uint32_t>& weights,
                                               std::shared_ptr<const ConsistentHash> table,
                                               std::uint64_t seed) {
  switch (balance) {
    case config::Balance::RoundRobin:
      return std::make_unique<RoundRobin>(weights);
    case config::Balance::LeastRequest:
      return std::make_unique<LeastRequest>(weights, seed);
    case config::Balance::Random:
      return std::make_unique<Random>(weights, seed);
    case config::Balance::ConsistentHash:
      return std::make_unique<HashBalancer>(std::move(table));
  }
  return std::make_unique<RoundRobin>(weights);
}

}  // namespace portico::upstream
