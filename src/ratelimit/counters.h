#pragma once
// The two rate-limit algorithms on one node, lock-free (several workers may take from the same
// counter at once). Times are microseconds on a monotonic clock.
//
// sliding_window: the window is cut into kBuckets buckets; a request is admitted when the
// buckets that overlap the trailing window (kBuckets + 1 of them, the oldest counted whole)
// hold fewer than `requests`. So no trailing window of the limit's length ever admits more
// than the limit; under saturation a window admits at least requests * kBuckets/(kBuckets+1).
//
// token_bucket: GCRA. A bucket of `requests` tokens refilled at requests/window: an idle key
// may send `requests` at once, then one every window/requests.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace portico::ratelimit {

// Fixed: a plain count with no clock (quotas put their calendar period in the key).
enum class Algorithm { SlidingWindow, TokenBucket, Fixed };

inline constexpr int kBuckets = 20;
inline constexpr std::size_t kMaxLimits = 8;  // per filter

struct Limit {
  std::int64_t requests = 0;
  std::int64_t window_us = 0;
  std::int64_t bucketUs() const { return window_us / kBuckets > 0 ? window_us / kBuckets : 1; }
};

// What one limit says about one request.
struct Outcome {
  bool allowed = false;
  std::int64_t remaining = 0;       // after this request
  std::int64_t reset_us = 0;        // until the limit is whole again (for RateLimit-Reset)
  std::int64_t retry_after_us = 0;  // refused: until a request would be admitted
};

// Retry and reset of a sliding window from its live buckets, oldest first:
// `excess` = how many counted requests must leave before one more fits (<= 0: fits now).
// Shared by the local counter and the expected figures of the Redis script's tests.
struct BucketCount {
  std::int64_t bucket;  // bucket number (time / bucket length)
  std::int64_t count;
};
Outcome slidingOutcome(const Limit& limit, std::int64_t now_us, std::span<BucketCount> live,
                       bool allowed);

// GCRA: the outcome of one request at `now_us` for a key whose theoretical arrival time is
// `tat_us`; `next_tat_us` gets the new value to store when allowed.
Outcome gcraOutcome(const Limit& limit, std::int64_t tat_us, std::int64_t now_us,
                    std::int64_t& next_tat_us);
// The emission interval: window / requests, rounded up (never more than `requests` a window).
inline std::int64_t emissionUs(const Limit& l) {
  return l.requests > 0 ? (l.window_us + l.requests - 1) / l.requests : l.window_us + 1;
}

class SlidingWindow {
 public:
  Outcome take(const Limit& limit, std::int64_t now_us);
  // Gives back a request taken at `now_us` (another limit refused it).
  void giveBack(const Limit& limit, std::int64_t now_us);

 private:
  // (bucket number mod 2^32) << 32 | count, per ring slot: stamp and count change together.
  std::array<std::atomic<std::uint64_t>, kBuckets + 1> slots_{};
};

class TokenBucket {
 public:
  Outcome take(const Limit& limit, std::int64_t now_us);
  void giveBack(const Limit& limit);

 private:
  std::atomic<std::int64_t> tat_{0};  // theoretical arrival time
};

// Every limit of a filter for one key: all must admit, or none counts the request.
class KeyCounters {
 public:
  KeyCounters(Algorithm algorithm, std::size_t limits);
  // Outcome of the refusing limit, or of the tightest one when all admit.
  Outcome take(const std::vector<Limit>& limits, std::int64_t now_us, std::size_t& which);
  void giveBack(const std::vector<Limit>& limits, std::int64_t now_us);

 private:
  // One limit's counter, of the filter's one algorithm.
  union Counter {
    Counter() : count(0) {}
    SlidingWindow window;
    TokenBucket bucket;
    std::atomic<std::int64_t> count;
  };
  Counter& counter(std::size_t i) { return i == 0 ? first_ : rest_[i - 1]; }
  Outcome takeOne(std::size_t i, const Limit& limit, std::int64_t now_us);
  void giveBackOne(std::size_t i, const Limit& limit, std::int64_t now_us);

  Algorithm algorithm_;
  // The first limit's counter is held inline: a key's counters then sit next to whatever holds
  // them, read in the same cache misses rather than one miss after another (issue 17's spread
  // scale row). Most filters have one limit.
  Counter first_;
  std::unique_ptr<Counter[]> rest_;
};

// The limit whose figures go in the RateLimit-* headers: the refusing one, else the one with
// the fewest remaining requests.
bool tighter(const Outcome& a, const Outcome& b);

}  // namespace portico::ratelimit
