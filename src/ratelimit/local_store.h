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

#include "core/flat_map.h"
#include "core/keyed_hash.h"
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
  // Keys in `worker`'s cache (read on that worker's thread, or when no worker runs).
  std::size_t cachedKeys(int worker) const { return caches_[worker].map.size(); }

 private:
  // Allocated with its shared_ptr's count (make_shared), its counters inline: one run of
  // cache lines per key.
  struct Entry {
    Entry(Algorithm a, std::size_t n) : counters(a, n) {}
    std::atomic<std::int64_t> last_used{0};
    std::atomic<bool> evicted{false};
    KeyCounters counters;
  };
  // Keys can come from a header, so both tables hash them with this process's secret
  // (core/keyed_hash.h). A hasher of our own also counts as fast: libstdc++ takes
  // std::hash<std::string> for slow and then searches small unordered_maps by walking every
  // node (a cache miss each when cold).
  // The store's own keys, looked up under its lock only for a key a worker has not cached.
  using Map = std::unordered_map<std::string, std::shared_ptr<Entry>, KeyedHash>;
  // A worker's cache, read on every request: a flat table (core/flat_map.h), one slot per
  // lookup where a key's store and entry are cold (1,000 routes' stores, 10,000 keys).
  using CacheMap = FlatMap<std::string, std::shared_ptr<Entry>, KeyedHash>;

  std::shared_ptr<Entry> find(const std::string& key, std::int64_t now_us);
  void evictIdle(std::int64_t now_us);  // with mu_ held
  static void makeRoom(CacheMap& cache);

  // A worker's cache holds every key the store may hold: a smaller one, cleared when full,
  // sent every request to the store's lock once more keys were active than it held (10,000
  // consumers: issue 17's scale row). When full, keys the store evicted go first.
  static constexpr int kCachedWorkers = 64;
  static constexpr std::size_t kEvictAbove = 100000;
  static constexpr std::size_t kCacheSize = kEvictAbove;

  Algorithm algorithm_;
  std::vector<Limit> limits_;
  std::int64_t longest_window_us_ = 0;
  mutable std::mutex mu_;
  Map entries_;
  struct alignas(64) Cache {
    CacheMap map;
  };
  std::array<Cache, kCachedWorkers> caches_;
};

}  // namespace portico::ratelimit
