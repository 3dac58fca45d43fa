#pragma once
// In-flight limits with a short queue (concurrency-limit), shared by the workers of this
// process. Taking a free slot is one compare-and-swap; the lock is only taken to queue, and by
// a release that finds callers queued.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/keyed_hash.h"

namespace portico::ratelimit {

class InFlight {
 public:
  // A queued caller. `grant` runs once, on the releasing thread, when it gets a slot; a caller
  // that gave up first (cancel() returned true) gets nothing.
  struct Waiter {
    std::function<void()> grant;
    std::atomic<bool> settled{false};
    // Returns true if the waiter was still queued (the caller now owns the refusal).
    bool cancel() { return !settled.exchange(true); }
  };

  explicit InFlight(std::int64_t max) : max_(max) {}

  bool tryAcquire();
  // Queues `w` unless the queue holds `queue_max` already (returns false). May grant at once.
  bool enqueue(const std::shared_ptr<Waiter>& w, std::size_t queue_max);
  // Takes a caller that gave up (after a successful cancel()) out of the queue.
  void forget(const std::shared_ptr<Waiter>& w);
  // Frees a slot, or hands it to the first caller still queued.
  void release();

  std::int64_t inFlight() const { return in_flight_.load(); }
  bool idle() const;

 private:
  const std::int64_t max_;
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> waiting_{0};
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Waiter>> queue_;
};

// One InFlight per key.
class InFlightTable {
 public:
  explicit InFlightTable(std::int64_t max) : max_(max) {}
  std::shared_ptr<InFlight> get(std::string_view key);

 private:
  const std::int64_t max_;
  std::mutex mu_;
  // Keyed hash: keys can come from a header (core/keyed_hash.h).
  std::unordered_map<std::string, std::shared_ptr<InFlight>, KeyedHash, std::equal_to<>> entries_;
};

}  // namespace portico::ratelimit
