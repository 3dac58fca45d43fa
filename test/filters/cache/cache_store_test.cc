#include "filters/cache/cache_store.h"

#include <gtest/gtest.h>

namespace portico::filters::cache {
namespace {

std::shared_ptr<CachedResponse> entry(const std::string& key, std::size_t bytes,
                                      std::vector<std::pair<std::string, std::string>> vary = {}) {
  auto e = std::make_shared<CachedResponse>();
  e->key = key;
  e->primary = "GET h" + key;
  e->path = key;
  e->bytes = bytes;
  e->vary = std::move(vary);
  e->body = std::make_shared<const std::string>(key);
  return e;
}

http::HeaderList request(std::initializer_list<std::pair<const char*, const char*>> list = {}) {
  http::HeaderList h;
  for (const auto& [n, v] : list) h.add(n, v);
  return h;
}

TEST(CacheStore, FindsTheVariantTheRequestSelects) {
  ManualTime time;
  CacheStore store(time);
  auto claim = store.claim(64 * 1024 * 1024);
  ASSERT_TRUE(store.insert(entry("/a", 100, {{"accept-encoding", "gzip"}})));
  ASSERT_TRUE(store.insert(entry("/a", 100, {{"accept-encoding", ""}})));
  auto gz = store.find("/a", request({{"Accept-Encoding", "gzip"}}));
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->vary[0].second, "gzip");
  auto plain = store.find("/a", request());
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->vary[0].second, "");
  EXPECT_FALSE(store.find("/a", request({{"Accept-Encoding", "br"}})));
  EXPECT_FALSE(store.find("/b", request()));
  // the same variant again replaces it
  ASSERT_TRUE(store.insert(entry("/a", 300, {{"accept-encoding", "gzip"}})));
  EXPECT_EQ(store.totals().entries, 2u);
  EXPECT_EQ(store.totals().bytes, 400u);
}

TEST(CacheStore, EvictsTheLeastRecentlyUsedPastItsMemory) {
  ManualTime time;
  CacheStore store(time);
  auto claim = store.claim(8 * 1000);  // 1000 bytes per shard
  EXPECT_EQ(store.maxEntryBytes(), 1000u);
  EXPECT_FALSE(store.insert(entry("/big", 1001)));
  // Keys of one shard: fill it, touch the oldest, add one more: the untouched one goes.
  std::vector<std::string> same_shard;
  const auto shard = [](const std::string& k) { return KeyedHash{}(k) % 8; };  // the store's
  for (int i = 0; same_shard.size() < 4; ++i) {
    std::string k = "/k" + std::to_string(i);
    if (same_shard.empty() || shard(k) == shard(same_shard[0])) same_shard.push_back(k);
  }
  ASSERT_TRUE(store.insert(entry(same_shard[0], 400)));
  ASSERT_TRUE(store.insert(entry(same_shard[1], 400)));
  ASSERT_TRUE(store.find(same_shard[0], request()));
  ASSERT_TRUE(store.insert(entry(same_shard[2], 400)));
  EXPECT_TRUE(store.find(same_shard[0], request()));
  EXPECT_FALSE(store.find(same_shard[1], request()));
  EXPECT_TRUE(store.find(same_shard[2], request()));
  EXPECT_EQ(store.totals().evictions, 1u);
  EXPECT_LE(store.totals().bytes, 8000u);
}

TEST(CacheStore, TheLargestClaimSetsTheMemory) {
  ManualTime time;
  CacheStore store(time);
  auto a = store.claim(1 << 20);
  {
    auto b = store.claim(4 << 20);
    EXPECT_EQ(store.capacity(), 4u << 20);
  }
  EXPECT_EQ(store.capacity(), 1u << 20);
}

TEST(CacheStore, OneRequestFillsAKeyTheOthersWait) {
  ManualTime time;
  CacheStore store(time);
  int woken = 0;
  EXPECT_TRUE(store.joinFill("/a", [&] { ++woken; }));
  EXPECT_FALSE(store.joinFill("/a", [&] { ++woken; }));
  EXPECT_FALSE(store.joinFill("/a", [&] { ++woken; }));
  EXPECT_TRUE(store.joinFill("/b", [&] { ++woken; }));  // another key: its own fill
  store.finishFill("/a");
  EXPECT_EQ(woken, 2);
  store.finishFill("/a");  // finished already: nothing
  EXPECT_EQ(woken, 2);
  EXPECT_TRUE(store.joinFill("/a", [&] { ++woken; }));  // a new fill
}

TEST(CacheStore, PurgesByKeyTagPrefixOrAll) {
  ManualTime time;
  CacheStore store(time);
  auto claim = store.claim(64 * 1024 * 1024);
  for (const char* k : {"/users/1", "/users/2", "/items/1"}) {
    auto e = entry(k, 10);
    e->tags = {std::string("user:") + k[7]};
    store.insert(e);
  }
  store.insert(entry("/users/1", 10, {{"accept-encoding", "gzip"}}));
  EXPECT_EQ(store.purge({Purge::Kind::Key, "GET h/users/1"}), 2u);  // both variants
  EXPECT_EQ(store.purge({Purge::Kind::Tag, "user:2"}), 1u);
  EXPECT_FALSE(store.find("/users/2", request()));
  EXPECT_TRUE(store.find("/items/1", request()));
  EXPECT_EQ(store.purge({Purge::Kind::Prefix, "/users/"}), 0u);
  EXPECT_EQ(store.purge({Purge::Kind::All, ""}), 1u);
  EXPECT_EQ(store.totals().entries, 0u);
  EXPECT_EQ(store.totals().purged, 4u);
}

TEST(CacheStore, FreshnessFollowsTheInjectedClock) {
  ManualTime time;
  auto e = entry("/a", 1);
  e->stored_at = time.steady();
  e->initial_age = std::chrono::seconds(2);
  e->fresh_for = std::chrono::seconds(10);
  EXPECT_TRUE(e->fresh(time.steady()));
  time.advance(std::chrono::seconds(8));
  EXPECT_FALSE(e->fresh(time.steady()));
  EXPECT_TRUE(e->staleWithin(time.steady(), std::chrono::seconds(1)));
  time.advance(std::chrono::seconds(1));
  EXPECT_FALSE(e->staleWithin(time.steady(), std::chrono::seconds(1)));
}

}  // namespace
}  // namespace portico::filters::cache
