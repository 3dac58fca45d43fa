#include "core/thread_block_cache.h"

#include <gtest/gtest.h>

#include "core/sanitizers.h"

#include <cstring>
#include <thread>

namespace portico::block_cache {
namespace {

TEST(ThreadBlockCache, ClassesGoFrom64BytesTo4KiBThenOneForTlsRecordBuffers) {
  EXPECT_EQ(classSize(classOf(1)), 64u);
  EXPECT_EQ(classSize(classOf(64)), 64u);
  EXPECT_EQ(classSize(classOf(65)), 128u);
  EXPECT_EQ(classSize(classOf(600)), 768u);
  EXPECT_EQ(classSize(classOf(1500)), 1536u);
  EXPECT_EQ(classSize(classOf(2496)), 3072u);  // the HTTP/1 session's frame
  EXPECT_EQ(classSize(classOf(4096)), 4096u);
  EXPECT_EQ(classOf(4097), kNoClass);
  EXPECT_EQ(classOf(16384), kNoClass);  // nothing between 4 and 16 KiB is rounded up to 17
  for (std::size_t bytes = 4097; bytes <= 16384; bytes += 97) ASSERT_EQ(classOf(bytes), kNoClass);
  // OpenSSL's read and write buffers (SSL_MODE_RELEASE_BUFFERS: tls/openssl_memory.h).
  EXPECT_EQ(classSize(classOf(16584)), 17408u);
  EXPECT_EQ(classSize(classOf(16712)), 17408u);
  EXPECT_EQ(classSize(classOf(17408)), 17408u);
  EXPECT_EQ(classOf(17409), kNoClass);
}

TEST(ThreadBlockCache, EverySizeGetsTheSmallestClassHoldingIt) {
  for (std::size_t bytes = 1; bytes <= 4096; ++bytes) {
    const auto c = classOf(bytes);
    ASSERT_NE(c, kNoClass) << bytes;
    ASSERT_GE(classSize(c), bytes) << bytes;
    if (c > 0) {
      ASSERT_LT(classSize(c - 1), bytes) << bytes;
    }
  }
  EXPECT_EQ(classOf(1 << 20), kNoClass);
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

#if !defined(PORTICO_ASAN)
TEST(ThreadBlockCache, SizedBlocksComeFromTheCacheUpTo4KiB) {
  EXPECT_EQ(blockSize(600), 768u);
  EXPECT_EQ(blockSize(5000), 5000u);  // malloc's
  void* a = allocate(600);
  ASSERT_NE(a, nullptr);
  deallocate(a, 600);
  EXPECT_EQ(allocate(700), a);  // the same class
  deallocate(a, 700);
  void* big = allocate(5000);
  ASSERT_NE(big, nullptr);
  deallocate(big, 5000);
}

struct Base : CacheAllocated {
  virtual ~Base() = default;
};
struct Derived : Base {
  char payload[700] = {};
};

TEST(ThreadBlockCache, DeletingThroughABaseGivesTheBlockToTheDerivedTypesClass) {
  Base* d = new Derived;
  delete d;
  void* again = allocate(sizeof(Derived));
  EXPECT_EQ(again, static_cast<void*>(d));
  deallocate(again, sizeof(Derived));
}
#else
TEST(ThreadBlockCache, UnderAddressSanitizerSizedBlocksAreMallocs) {
  EXPECT_EQ(blockSize(600), 600u);
  void* a = allocate(600);
  ASSERT_NE(a, nullptr);
  deallocate(a, 600);
}
#endif

}  // namespace
}  // namespace portico::block_cache
