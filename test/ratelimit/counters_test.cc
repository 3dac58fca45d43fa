#include "ratelimit/counters.h"

#include <gtest/gtest.h>

#include <deque>
#include <thread>

#include "ratelimit/local_store.h"
#include "ratelimit/redis_scripts.h"

namespace portico::ratelimit {
namespace {

constexpr std::int64_t kSecond = 1'000'000;

TEST(SlidingWindow, NeverAdmitsMoreThanTheLimitInAnyTrailingWindow) {
  const Limit limit{10, 1 * kSecond};
  SlidingWindow w;
  std::deque<std::int64_t> admitted;
  std::int64_t total = 0;
  // One request every 7 ms for 10 s: 1430 requests, against 10 per second.
  for (std::int64_t now = 0; now < 10 * kSecond; now += 7000) {
    Outcome o = w.take(limit, now);
    if (!o.allowed) {
      EXPECT_GT(o.retry_after_us, 0);
      continue;
    }
    ++total;
    admitted.push_back(now);
    while (admitted.front() <= now - limit.window_us) admitted.pop_front();
    ASSERT_LE(admitted.size(), 10u) << "at " << now;
  }
  // At least kBuckets/(kBuckets+1) of the limit each window.
  EXPECT_GE(total, 10 * 10 * kBuckets / (kBuckets + 1));
}

TEST(SlidingWindow, RemainingResetAndRetryAfter) {
  const Limit limit{3, 10 * kSecond};  // buckets of 500 ms
  SlidingWindow w;
  EXPECT_EQ(w.take(limit, 0).remaining, 2);
  EXPECT_EQ(w.take(limit, 100'000).remaining, 1);
  Outcome third = w.take(limit, 2 * kSecond);
  EXPECT_TRUE(third.allowed);
  EXPECT_EQ(third.remaining, 0);
  Outcome refused = w.take(limit, 3 * kSecond);
  EXPECT_FALSE(refused.allowed);
  // The two requests of bucket 0 stop counting when the window has moved 21 buckets.
  EXPECT_EQ(refused.retry_after_us, 21 * 500'000 - 3 * kSecond);
  EXPECT_TRUE(w.take(limit, 21 * 500'000).allowed);
}

TEST(SlidingWindow, WorkersRacingNeverOvershoot) {
  const Limit limit{1000, 60 * kSecond};
  SlidingWindow w;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i)
        if (w.take(limit, 1000).allowed) ++admitted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000);
}

TEST(TokenBucket, BurstThenSteadyRate) {
  const Limit limit{4, 1 * kSecond};  // a token every 250 ms
  TokenBucket b;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(b.take(limit, 0).allowed) << i;
  Outcome o = b.take(limit, 0);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after_us, 250'000);
  EXPECT_FALSE(b.take(limit, 249'000).allowed);
  EXPECT_TRUE(b.take(limit, 250'000).allowed);
}

TEST(KeyCounters, ARefusalGivesBackWhatOtherLimitsTook) {
  std::vector<Limit> limits{{5, 60 * kSecond}, {1, 1 * kSecond}};
  KeyCounters c(Algorithm::SlidingWindow, limits.size());
  std::size_t which = 9;
  EXPECT_TRUE(c.take(limits, 0, which).allowed);
  EXPECT_EQ(which, 1u);  // the tighter limit reports
  EXPECT_FALSE(c.take(limits, 1000, which).allowed);
  EXPECT_EQ(which, 1u);
  // Only one of the five per minute was used.
  Outcome o = c.take(limits, 2 * kSecond, which);
  EXPECT_TRUE(o.allowed);
  o = c.take(limits, 4 * kSecond, which);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(which, 1u);
}

TEST(LocalStore, KeysAreIndependentAndCachesAgree) {
  LocalStore store(Algorithm::SlidingWindow, {{2, 10 * kSecond}});
  std::size_t which = 0;
  EXPECT_TRUE(store.take("a", 0, 0, which).allowed);
  EXPECT_TRUE(store.take("a", 1, 0, which).allowed);  // another worker, same counters
  EXPECT_FALSE(store.take("a", 0, 0, which).allowed);
  EXPECT_TRUE(store.take("b", -1, 0, which).allowed);
  EXPECT_EQ(store.size(), 2u);
}

// 10,000 active keys (issue 17's scale row) stay in a worker's cache: a cache smaller than the
// active keys sent every request through the store's lock.
TEST(LocalStore, WorkerCacheHoldsTenThousandKeys) {
  LocalStore store(Algorithm::SlidingWindow, {{100, 10 * kSecond}});
  std::size_t which = 0;
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 10000; ++i)
      ASSERT_TRUE(store.take("consumer-" + std::to_string(i), 0, 0, which).allowed);
  EXPECT_EQ(store.cachedKeys(0), 10000u);
  EXPECT_EQ(store.size(), 10000u);
}

// Past 100,000 keys the store drops the idle ones. The worker that filled its cache lets go of
// them when it next needs room; another worker whose cache still holds a dropped key finds it
// marked, and looks the key up again.
TEST(LocalStore, IdleKeysLeaveTheStoreAndTheCaches) {
  LocalStore store(Algorithm::SlidingWindow, {{1, kSecond}});
  std::size_t which = 0;
  ASSERT_TRUE(store.take("k0", 1, 0, which).allowed);
  for (int i = 1; i < 100000; ++i)
    ASSERT_TRUE(store.take("k" + std::to_string(i), 0, 0, which).allowed);
  EXPECT_FALSE(store.take("k0", 0, 0, which).allowed);  // one request a second, taken
  EXPECT_EQ(store.size(), 100000u);
  EXPECT_EQ(store.cachedKeys(0), 100000u);

  const std::int64_t later = 10 * kSecond;
  EXPECT_TRUE(store.take("fresh", 0, later, which).allowed);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.cachedKeys(0), 1u);
  EXPECT_EQ(store.cachedKeys(1), 1u);  // k0, dropped by the store

  EXPECT_TRUE(store.take("k0", 1, later, which).allowed);
  EXPECT_FALSE(store.take("k0", 0, later, which).allowed);  // both workers, the new entry
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.cachedKeys(1), 1u);
}

// The scripts answer one string of integers.
redis::Reply integers(std::vector<std::int64_t> values) {
  redis::Reply r;
  r.type = redis::Reply::Type::String;
  for (std::size_t i = 0; i < values.size(); ++i)
    r.str += (i ? " " : "") + std::to_string(values[i]);
  return r;
}

TEST(RedisScripts, SlidingWindowReplyBecomesTheSameFigures) {
  std::vector<Limit> limits{{3, 10 * kSecond}};
  const std::int64_t now = 3 * kSecond;  // bucket 6
  Outcome o;
  std::size_t which = 0;
  // Admitted; before it, 2 requests, the newest in bucket 0.
  ASSERT_TRUE(
      parseRedisReply(Algorithm::SlidingWindow, limits, integers({0, now, 2, 0, 0}), o, which));
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.remaining, 0);
  EXPECT_EQ(o.reset_us, (6 + 21) * 500'000 - now);  // the request itself is in bucket 6
  // Refused by limit 1; bucket 0 holds 2, bucket 4 holds 1.
  ASSERT_TRUE(parseRedisReply(Algorithm::SlidingWindow, limits,
                              integers({1, now, 3, 4, 2, 0, 2, 4, 1}), o, which));
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after_us, 21 * 500'000 - now);
  EXPECT_FALSE(parseRedisReply(Algorithm::SlidingWindow, limits, integers({0, now, 5}), o, which));
  EXPECT_FALSE(
      parseRedisReply(Algorithm::SlidingWindow, limits, redis::Reply::error("x"), o, which));
}

TEST(RedisScripts, TokenBucketReply) {
  std::vector<Limit> limits{{4, 1 * kSecond}};
  Outcome o;
  std::size_t which = 0;
  ASSERT_TRUE(
      parseRedisReply(Algorithm::TokenBucket, limits, integers({1, 0, 1'000'000}), o, which));
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after_us, 250'000);
}

}  // namespace
}  // namespace portico::ratelimit
