#include "tls/openssl_memory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/sanitizers.h"

namespace portico::tls::detail {
namespace {

TEST(OpensslMemory, BlocksOfEverySizeAreUsableAndFreed) {
  for (std::size_t size : {1, 40, 4000, 16384, 16385, 16584, 16712, 17408, 17409, 100000}) {
    auto* p = static_cast<unsigned char*>(allocate(size));
    ASSERT_NE(p, nullptr) << size;
    std::memset(p, 0x5a, size);
    release(p);
  }
  release(nullptr);
}

TEST(OpensslMemory, ReallocKeepsTheBytesAcrossTheRecordClass) {
  auto* p = static_cast<char*>(allocate(10));
  std::memcpy(p, "0123456789", 10);
  p = static_cast<char*>(reallocate(p, 16600));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::string(p, 10), "0123456789");
  std::memset(p, 1, 16600);
  release(p);
  auto* q = static_cast<char*>(allocate(16600));  // a cached block grown by realloc
  std::memcpy(q, "abc", 3);
  q = static_cast<char*>(reallocate(q, 40000));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(std::string(q, 3), "abc");
  release(q);
}

#if !defined(PORTICO_ASAN)
// What SSL_MODE_RELEASE_BUFFERS does per request: OpenSSL frees its read buffer and takes a
// write buffer; the thread's cache gives the same block back, not glibc's large-chunk bins.
TEST(OpensslMemory, ARecordBufferFreedIsTheNextTaken) {
  void* read_buffer = allocate(16584);
  ASSERT_NE(read_buffer, nullptr);
  release(read_buffer);
  void* write_buffer = allocate(16712);
  EXPECT_EQ(write_buffer, read_buffer);
  release(write_buffer);
}
#endif

}  // namespace
}  // namespace portico::tls::detail
