#include "core/flat_map.h"

#include <gtest/gtest.h>

#include <map>
#include <memory_resource>
#include <random>
#include <string>
#include <string_view>

namespace portico {
namespace {

struct ViewHash {
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Every key in one home slot, and one key hashing to 0 (stored as 1, next to real 1s).
struct CollidingHash {
  std::size_t operator()(int k) const { return k == 0 ? 0 : 1; }
};

TEST(FlatMap, FindsWhatWasAddedAndNothingElse) {
  FlatMap<std::string, int, ViewHash> m;
  EXPECT_EQ(m.find(std::string_view("a")), nullptr);
  for (int i = 0; i < 1000; ++i) {
    auto [value, added] = m.emplace("key-" + std::to_string(i), i);
    EXPECT_TRUE(added);
    EXPECT_EQ(*value, i);
  }
  EXPECT_EQ(m.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    const int* v = m.find(std::string_view("key-" + std::to_string(i)));
    ASSERT_NE(v, nullptr) << i;
    EXPECT_EQ(*v, i);
  }
  EXPECT_EQ(m.find(std::string_view("key-1000")), nullptr);
  EXPECT_EQ(m.find(std::string_view("")), nullptr);
}

TEST(FlatMap, APresentKeyKeepsItsValue) {
  FlatMap<std::string, int, ViewHash> m;
  m.emplace("a", 1);
  auto [value, added] = m.emplace("a", 2);
  EXPECT_FALSE(added);
  EXPECT_EQ(*value, 1);
  EXPECT_EQ(m.size(), 1u);
}

TEST(FlatMap, CollidingKeysAreAllFoundAndErasedOneByOne) {
  FlatMap<int, int, CollidingHash> m;
  for (int k = 0; k < 20; ++k) m.emplace(k, k * 10);
  for (int k = 0; k < 20; k += 3) EXPECT_TRUE(m.erase(k));
  EXPECT_FALSE(m.erase(3));
  EXPECT_FALSE(m.erase(99));
  for (int k = 0; k < 20; ++k) {
    const int* v = m.find(k);
    if (k % 3 == 0) {
      EXPECT_EQ(v, nullptr) << k;
    } else {
      ASSERT_NE(v, nullptr) << k;
      EXPECT_EQ(*v, k * 10);
    }
  }
}

// Random adds and erases against std::map, in a small table where runs wrap around its end.
TEST(FlatMap, MatchesAnOrderedMapUnderRandomChanges) {
  struct LowBitsHash {
    std::size_t operator()(int k) const {
      return static_cast<std::size_t>(k) * 0x9e3779b97f4a7c15u;
    }
  };
  FlatMap<int, int, LowBitsHash> m;
  std::map<int, int> want;
  std::mt19937 rng(17);
  for (int step = 0; step < 20000; ++step) {
    const int k = static_cast<int>(rng() % 64);
    if (rng() % 2) {
      const bool added = m.emplace(k, step).second;
      EXPECT_EQ(added, want.emplace(k, step).second);
    } else {
      EXPECT_EQ(m.erase(k), want.erase(k) == 1);
    }
    ASSERT_EQ(m.size(), want.size());
  }
  for (int k = 0; k < 64; ++k) {
    const int* v = m.find(k);
    auto it = want.find(k);
    ASSERT_EQ(v != nullptr, it != want.end()) << k;
    if (v) {
      EXPECT_EQ(*v, it->second);
    }
  }
}

TEST(FlatMap, EraseIfLeavesTheRestFindable) {
  FlatMap<int, int, CollidingHash> m;
  for (int k = 0; k < 40; ++k) m.emplace(k, k);
  EXPECT_EQ(m.eraseIf([](int k, int) { return k % 2 == 1; }), 20u);
  EXPECT_EQ(m.size(), 20u);
  for (int k = 0; k < 40; ++k) {
    EXPECT_EQ(m.find(k) != nullptr, k % 2 == 0) << k;
  }
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.find(0), nullptr);
  m.emplace(5, 5);
  EXPECT_NE(m.find(5), nullptr);
}

TEST(FlatMap, TakesItsSlotsFromTheGivenMemoryResource) {
  std::pmr::monotonic_buffer_resource arena;
  std::pmr::polymorphic_allocator<std::byte> alloc(&arena);
  FlatMap<std::string_view, int, ViewHash, std::pmr::polymorphic_allocator<std::byte>> m(alloc);
  m.emplace("segment", 1);
  ASSERT_NE(m.find(std::string_view("segment")), nullptr);
  EXPECT_EQ(m.find(std::string_view("segment")), m.find(std::string_view("segment")));
  EXPECT_EQ(m.get_allocator().resource(), &arena);
}

}  // namespace
}  // namespace portico
