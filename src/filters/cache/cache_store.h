#pragma once
// The response cache's store: one per process, shared by every worker's cache filters and kept
// across reloads (while a snapshot has a cache filter). Entries are immutable once stored and
// handed out as shared pointers: a request answering from one never holds a lock while it
// writes. Sharded by key, each shard an LRU under its own mutex, taken for a lookup or an insert
// (never for I/O). The store also coalesces misses: the first request for a missing key fills it,
// the others wait for that fill (see joinFill).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/keyed_hash.h"
#include "core/time_source.h"
#include "http/header_list.h"
#include "http/http_date.h"

namespace portico::filters::cache {

using Steady = TimeSource::Steady;

struct CachedResponse {
  int status = 200;
  http::HeaderList headers;  // as the client gets them, without framing, Age or Cache-Status
  std::shared_ptr<const std::string> body;
  std::string key;      // the store's key: route, primary key and the configured extras
  std::string primary;  // "GET host/path?query" (purge by key)
  std::string path;     // purge by prefix
  std::vector<std::string> tags;
  // The request headers the response varies on (lower-case names) and this variant's values.
  std::vector<std::pair<std::string, std::string>> vary;
  Steady::time_point stored_at;
  std::chrono::seconds initial_age{0};
  std::chrono::seconds fresh_for{0};
  std::chrono::seconds stale_while_revalidate{0};
  std::chrono::seconds stale_if_error{0};
  bool shared_ok = false;  // may answer requests that carry Authorization
  std::size_t bytes = 0;   // what it counts against the store's memory
  // One background refresh at a time (stale-while-revalidate).
  mutable std::atomic<bool> refreshing{false};

  Steady::duration age(Steady::time_point now) const { return initial_age + (now - stored_at); }
  bool fresh(Steady::time_point now) const { return age(now) < fresh_for; }
  // Stale for at most `window` (stale-while-revalidate, stale-if-error).
  bool staleWithin(Steady::time_point now, std::chrono::seconds window) const {
    return age(now) < fresh_for + window;
  }
  // The request headers a stored variant is chosen by; `value` of a header the request lacks
  // is empty. Multiple fields are joined with ", ".
  static std::string requestValue(const http::HeaderList& request, std::string_view name);
  bool matches(const http::HeaderList& request) const;
};

struct Purge {
  enum class Kind { Key, Tag, Prefix, All };
  Kind kind = Kind::All;
  std::string value;
};

class CacheStore {
 public:
  enum class Event { Hit, Miss, Stale, Coalesced, Stored, Count };
  struct Totals {
    std::array<std::uint64_t, static_cast<std::size_t>(Event::Count)> events{};
    std::uint64_t evictions = 0;
    std::uint64_t purged = 0;
    std::uint64_t bytes = 0;
    std::uint64_t entries = 0;
    std::uint64_t capacity = 0;
  };

  explicit CacheStore(const TimeSource& time);
  CacheStore(const CacheStore&) = delete;
  CacheStore& operator=(const CacheStore&) = delete;

  const TimeSource& time() const { return time_; }

  // The store's memory is the largest that a live cache filter asks for: each holds a claim.
  class Claim;
  std::unique_ptr<Claim> claim(std::uint64_t bytes);
  std::uint64_t capacity() const { return capacity_.load(std::memory_order_relaxed); }
  // The largest entry the store keeps (a share of one shard).
  std::uint64_t maxEntryBytes() const { return capacity() / kShards; }

  // The stored variant of `key` that `request` selects (by the response's Vary), fresh or not;
  // null when there is none. Marks it recently used.
  std::shared_ptr<const CachedResponse> find(const std::string& key,
                                             const http::HeaderList& request);
  // Stores `entry` (replacing the variant with the same Vary values), evicting the least
  // recently used entries of its shard past the memory. False when it is too large.
  bool insert(std::shared_ptr<CachedResponse> entry);

  // Coalescing: the first request to join the fill of `key` leads it (true: it goes upstream
  // and calls finishFill when its answer is stored or will not be). The others get false and
  // their `wake` runs once, on the thread that finishes the fill (post it to your own worker).
  bool joinFill(const std::string& key, std::function<void()> wake);
  void finishFill(const std::string& key);

  std::size_t purge(const Purge& what);

  void count(Event e, int worker) {
    slots_[static_cast<std::size_t>(worker) % kSlots].events[static_cast<std::size_t>(e)].fetch_add(
        1, std::memory_order_relaxed);
  }
  Totals totals() const;
  // The store's series in Prometheus text format.
  void appendMetrics(std::string& out) const;

 private:
  static constexpr std::size_t kShards = 8;
  static constexpr std::size_t kSlots = 16;

  using Lru = std::list<std::shared_ptr<CachedResponse>>;  // front: most recently used
  struct Shard {
    mutable std::mutex mu;
    Lru lru;
    // Keys come from the request (its URL, its headers): hashed with this process's secret
    // (core/keyed_hash.h).
    std::unordered_map<std::string, std::vector<Lru::iterator>, KeyedHash, std::equal_to<>>
        variants;
    std::unordered_map<std::string, std::vector<std::function<void()>>, KeyedHash, std::equal_to<>>
        fills;
    std::uint64_t bytes = 0;
  };
  struct alignas(64) Slot {
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Event::Count)> events{};
  };

  Shard& shardOf(const std::string& key) { return shards_[KeyedHash{}(key) % kShards]; }
  void erase(Shard& s, Lru::iterator it);  // under s.mu
  void release(Claim* c);

  const TimeSource& time_;
  std::array<Shard, kShards> shards_;
  std::array<Slot, kSlots> slots_;
  std::atomic<std::uint64_t> capacity_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> purged_{0};
  std::mutex claims_mu_;
  std::multiset<std::uint64_t> claims_;
};

class CacheStore::Claim {
 public:
  Claim(CacheStore& store, std::uint64_t bytes) : store_(store), bytes_(bytes) {}
  ~Claim() { store_.release(this); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  CacheStore& store_;
  std::uint64_t bytes_;
};

}  // namespace portico::filters::cache
