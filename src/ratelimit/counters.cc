#include "ratelimit/counters.h"

#include <algorithm>

namespace portico::ratelimit {
namespace {

constexpr std::uint64_t pack(std::int64_t bucket, std::uint64_t count) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(bucket)) << 32) | count;
}
constexpr std::uint32_t stampOf(std::uint64_t v) {
  return static_cast<std::uint32_t>(v >> 32);
}
constexpr std::uint64_t countOf(std::uint64_t v) {
  return v & 0xffffffffULL;
}

}  // namespace

Outcome slidingOutcome(const Limit& limit, std::int64_t now_us, std::span<BucketCount> live,
                       bool allowed) {
  const std::int64_t d = limit.bucketUs();
  std::int64_t sum = 0;
  std::int64_t newest = 0;
  for (const auto& b : live) {
    sum += b.count;
    newest = std::max(newest, b.bucket);
  }
  Outcome o;
  o.allowed = allowed;
  o.remaining = std::max<std::int64_t>(0, limit.requests - sum);
  // A bucket stops counting once the window has moved kBuckets + 1 buckets past it.
  auto leaves = [&](std::int64_t bucket) { return (bucket + kBuckets + 1) * d - now_us; };
  o.reset_us = live.empty() ? 0 : std::max<std::int64_t>(0, leaves(newest));
  if (!allowed) {
    // Oldest first: when enough of them have left, one more request fits.
    std::sort(live.begin(), live.end(),
              [](const BucketCount& a, const BucketCount& b) { return a.bucket < b.bucket; });
    std::int64_t excess = sum + 1 - limit.requests;
    for (const auto& b : live) {
      excess -= b.count;
      if (excess <= 0) {
        o.retry_after_us = std::max<std::int64_t>(0, leaves(b.bucket));
        break;
      }
    }
    if (excess > 0) o.retry_after_us = limit.window_us;  // a limit of 0
  }
  return o;
}

Outcome SlidingWindow::take(const Limit& limit, std::int64_t now_us) {
  const std::int64_t d = limit.bucketUs();
  const std::int64_t bucket = now_us / d;
  auto& slot = slots_[static_cast<std::size_t>(bucket % (kBuckets + 1))];
  std::uint64_t old = slot.load(std::memory_order_relaxed);
  for (;;) {
    std::uint64_t next =
        stampOf(old) == static_cast<std::uint32_t>(bucket) ? old + 1 : pack(bucket, 1);
    if (slot.compare_exchange_weak(old, next, std::memory_order_acq_rel)) break;
  }
  // Count after adding: two workers racing for the last place both see the other and both
  // give back, rather than both being admitted.
  std::array<BucketCount, kBuckets + 1> live_buf;
  std::size_t n = 0;
  std::int64_t sum = 0;
  for (auto& s : slots_) {
    std::uint64_t v = s.load(std::memory_order_acquire);
    std::uint32_t age = static_cast<std::uint32_t>(bucket) - stampOf(v);
    if (countOf(v) == 0 || age > static_cast<std::uint32_t>(kBuckets)) continue;
    live_buf[n++] = {bucket - static_cast<std::int64_t>(age),
                     static_cast<std::int64_t>(countOf(v))};
    sum += static_cast<std::int64_t>(countOf(v));
  }
  std::span<BucketCount> live(live_buf.data(), n);
  if (sum <= limit.requests) return slidingOutcome(limit, now_us, live, true);
  giveBack(limit, now_us);
  for (auto& b : live)
    if (b.bucket == bucket) --b.count;
  return slidingOutcome(limit, now_us, live, false);
}

void SlidingWindow::giveBack(const Limit& limit, std::int64_t now_us) {
  const std::int64_t bucket = now_us / limit.bucketUs();
  auto& slot = slots_[static_cast<std::size_t>(bucket % (kBuckets + 1))];
  std::uint64_t old = slot.load(std::memory_order_relaxed);
  while (stampOf(old) == static_cast<std::uint32_t>(bucket) && countOf(old) > 0) {
    if (slot.compare_exchange_weak(old, old - 1, std::memory_order_acq_rel)) return;
  }
}

Outcome gcraOutcome(const Limit& limit, std::int64_t tat_us, std::int64_t now_us,
                    std::int64_t& next_tat_us) {
  const std::int64_t t = emissionUs(limit);
  const std::int64_t base = std::max(tat_us, now_us);
  next_tat_us = base + t;
  Outcome o;
  if (next_tat_us - now_us > limit.window_us) {
    o.retry_after_us = next_tat_us - limit.window_us - now_us;
    o.reset_us = base - now_us;
    return o;
  }
  o.allowed = true;
  o.remaining = (limit.window_us - (next_tat_us - now_us)) / t;
  o.reset_us = next_tat_us - now_us;
  return o;
}

Outcome TokenBucket::take(const Limit& limit, std::int64_t now_us) {
  std::int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t next = 0;
    Outcome o = gcraOutcome(limit, tat, now_us, next);
    if (!o.allowed || tat_.compare_exchange_weak(tat, next, std::memory_order_acq_rel)) return o;
  }
}

void TokenBucket::giveBack(const Limit& limit) {
  tat_.fetch_sub(emissionUs(limit), std::memory_order_acq_rel);
}

KeyCounters::KeyCounters(Algorithm algorithm, std::size_t limits) : algorithm_(algorithm) {
  if (limits > 1) rest_ = std::make_unique<Counter[]>(limits - 1);
  // Each counter starts as a count (its union's first active member); the algorithm's own kind
  // takes its place (every kind is trivially destructible).
  for (std::size_t i = 0; i < limits; ++i) {
    Counter& c = counter(i);
    if (algorithm == Algorithm::SlidingWindow) std::construct_at(&c.window);
    if (algorithm == Algorithm::TokenBucket) std::construct_at(&c.bucket);
  }
}

bool tighter(const Outcome& a, const Outcome& b) {
  if (a.allowed != b.allowed) return !a.allowed;
  if (a.remaining != b.remaining) return a.remaining < b.remaining;
  return a.reset_us > b.reset_us;
}

Outcome KeyCounters::take(const std::vector<Limit>& limits, std::int64_t now_us,
                          std::size_t& which) {
  Outcome best;
  which = 0;
  for (std::size_t i = 0; i < limits.size(); ++i) {
    Outcome o = takeOne(i, limits[i], now_us);
    if (i == 0 || tighter(o, best)) {
      best = o;
      which = i;
    }
    if (!o.allowed) {
      for (std::size_t j = 0; j < i; ++j) giveBackOne(j, limits[j], now_us);
      return best;
    }
  }
  return best;
}

void KeyCounters::giveBack(const std::vector<Limit>& limits, std::int64_t now_us) {
  for (std::size_t i = 0; i < limits.size(); ++i) giveBackOne(i, limits[i], now_us);
}

Outcome KeyCounters::takeOne(std::size_t i, const Limit& limit, std::int64_t now_us) {
  switch (algorithm_) {
    case Algorithm::SlidingWindow:
      return counter(i).window.take(limit, now_us);
    case Algorithm::TokenBucket:
      return counter(i).bucket.take(limit, now_us);
    case Algorithm::Fixed:
      break;
  }
  Outcome o;
  auto& count = counter(i).count;
  const std::int64_t n = count.fetch_add(1, std::memory_order_acq_rel) + 1;
  o.allowed = n <= limit.requests;
  if (!o.allowed) count.fetch_sub(1, std::memory_order_acq_rel);
  o.remaining = std::max<std::int64_t>(0, limit.requests - (o.allowed ? n : n - 1));
  return o;
}

void KeyCounters::giveBackOne(std::size_t i, const Limit& limit, std::int64_t now_us) {
  switch (algorithm_) {
    case Algorithm::SlidingWindow:
      counter(i).window.giveBack(limit, now_us);
      break;
    case Algorithm::TokenBucket:
      counter(i).bucket.giveBack(limit);
      break;
    case Algorithm::Fixed:
      counter(i).count.fetch_sub(1, std::memory_order_acq_rel);
      break;
  }
}

}  // namespace portico::ratelimit
