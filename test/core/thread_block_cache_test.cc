#include "core/thread_block_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace portico::block_cache {
namespace {

TEST(ThreadBlockCache, ClassesArePowersOfTwoFrom64BytesTo4KiB) {
  EXPECT_EQ(classSize(classOf(1)), 64u);
  EXPECT_EQ(classSize(classOf(64)), 64u);
  EXPECT_EQ(classSize(classOf(65)), 128u);
  EXPECT_EQ(classSize(classOf(1500)), 2048u);
  EXPECT_EQ(classSize(classOf(4096)), 4096u);
  EXPECT_EQ(classOf(4097), kNoClass);
}

TEST(ThreadBlockCache, AGivenBlockIsTheNextTakenOfItsClass) {
  const auto c = classOf(600);
  void* a = take(c);
  ASSERT_NE(a, nullptr);
  std::memset(a, 0xab, classSize(c));  // the whole class size is usable
  give(c, a);
  EXPECT_EQ(take(c), a);
  void* other = take(classOf(100));  // another class does not get it
  EXPECT_NE(other, a);
  give(classOf(100), other);
  give(c, a);
}

TEST(ThreadBlockCache, ABlockMayBeGivenBackOnAnotherThread) {
  const auto c = classOf(300);
  void* a = take(c);
  std::thread([&] {
    give(c, a);
    EXPECT_EQ(take(c), a);  // that thread's cache now holds it
    give(c, a);
  }).join();  // and frees it when the thread ends
}

}  // namespace
}  // namespace portico::block_cache
