#pragma once
// Rate-limit counters of this node, by key, shared by the workers. A worker finds a key's
// counters in its own cache (no lock); only a key it has not seen yet takes the store's lock.
// The counters themselves are atomics, so the workers' counts add up exactly.
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ratelimit/counters.h"

namespace portico::ratelimit {

class LocalStore {
 public:
  LocalStore(Algorithm algorithm, std::vector<Limit> limits);

  // Takes one request for `key` from every limit at `now_us`. `worker` selects the cache
  // (-1: none). `which` gets the index of the limit the outcome is about.
  Outcome take(const std::string& key, int worker, std::int64_t now_us, std::size_t& which);

  const std::vector<Limit>& limits() const { return limits_; }
  std::size_t size() const;

 private:
  struct Entry {
    Entry(Algorithm a, std::size_t n) : counters(a, n) {}
    KeyCounters counters;
    std::atomic<std::int64_t> last_used{0};
    std::atomic<bool> evicted{false};
  };
  using Map = std::unordered_map<std::string, std::shared_ptr<Entry>>;

  std::shared_ptr<Entry> find(const std::string& key, std::int64_t now_us);
  void evictIdle(std::int64_t now_us);  // with mu_ held

  static constexpr int kCachedWorkers = 64;
  static constexpr std::size_t kCacheSize = 4096;
  static constexpr std::size_t kEvictAbove = 100000;

  Algorithm algorithm_;
  std::vector<Limit> limits_;
  std::int64_t longest_window_us_ = 0;
  mutable std::mutex mu_;
  Map entries_;
  struct alignas(64) Cache {
    Map map;
  };
  std::array<Cache, kCachedWorkers> caches_;
};

}  // namespace portico::ratelimit
