#include "ratelimit/local_store.h"

#include <algorithm>

namespace portico::ratelimit {

LocalStore::LocalStore(Algorithm algorithm, std::vector<Limit> limits)
    : algorithm_(algorithm), limits_(std::move(limits)) {
  for (const auto& l : limits_) longest_window_us_ = std::max(longest_window_us_, l.window_us);
}

std::size_t LocalStore::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::shared_ptr<LocalStore::Entry> LocalStore::find(const std::string& key, std::int64_t now_us) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  if (entries_.size() >= kEvictAbove) evictIdle(now_us);
  auto e = std::make_shared<Entry>(algorithm_, limits_.size());
  entries_.emplace(key, e);
  return e;
}

void LocalStore::evictIdle(std::int64_t now_us) {
  // A key idle for two of its longest windows counts nothing any more. A worker may be using
  // it right now: it stamps last_used before taking and checks `evicted` after, and we set
  // `evicted` before reading last_used (both sequentially consistent), so either we see its
  // stamp and keep the key, or it sees the flag, gives back and looks the key up again.
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = *it->second;
    e.evicted.store(true);
    if (now_us - e.last_used.load() > 2 * longest_window_us_) {
      it = entries_.erase(it);
    } else {
      e.evicted.store(false);
      ++it;
    }
  }
}

void LocalStore::makeRoom(CacheMap& cache) {
  cache.eraseIf(
      [](const std::string&, const std::shared_ptr<Entry>& e) { return e->evicted.load(); });
  if (cache.size() >= kCacheSize) cache.clear();
}

Outcome LocalStore::take(const std::string& key, int worker, std::int64_t now_us,
                         std::size_t& which) {
  CacheMap* cache = worker >= 0 && worker < kCachedWorkers ? &caches_[worker].map : nullptr;
  for (;;) {
    // The cache keeps a cached entry alive; `found` keeps one the cache does not hold.
    Entry* entry = nullptr;
    std::shared_ptr<Entry> found;
    if (cache) {
      if (auto* cached = cache->find(key)) entry = cached->get();
    }
    if (!entry) {
      found = find(key, now_us);
      entry = found.get();
      if (cache) {
        if (cache->size() >= kCacheSize) makeRoom(*cache);
        cache->emplace(key, std::move(found));
      }
    }
    entry->last_used.store(now_us);
    Outcome o = entry->counters.take(limits_, now_us, which);
    if (!entry->evicted.load()) return o;
    if (o.allowed) entry->counters.giveBack(limits_, now_us);
    if (cache) cache->erase(key);
  }
}

}  // namespace portico::ratelimit
