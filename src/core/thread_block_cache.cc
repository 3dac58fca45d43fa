#include "core/thread_block_cache.h"

#include <array>
#include <cstdlib>
#include <new>
#include <utility>

#include "core/sanitizers.h"

namespace portico::block_cache {
namespace {

#if defined(PORTICO_ASAN)
constexpr bool kCache = false;
#else
constexpr bool kCache = true;
#endif

// Powers of two, with a class half-way between the larger ones: a connection's longest-lived
// frame (the HTTP/1 session, 2.5 KiB) fits in 3 KiB instead of taking 4 (idle connections).
// Then one class for OpenSSL's record buffers alone (16.2–16.4 KiB: tls/openssl_memory.h),
// which SSL_MODE_RELEASE_BUFFERS frees and takes again on every request: blocks from 4 KiB to
// 16 KiB have no class, so nothing else is rounded up to it.
constexpr std::array<std::size_t, 11> kClassSizes = {64,   128,  256,  512,  768,         1024,
                                                     1536, 2048, 3072, 4096, kRecordBlock};
constexpr std::uint32_t kRecordClass = kClassSizes.size() - 1;
// Bytes of freed blocks a thread keeps. A worker with 128 HTTP/2 streams in flight holds about
// 770 frames (six per request, 0.6 MB); a cap of 128 blocks per class sent a third of them
// back to malloc (heaptrack, docs/performance.md).
constexpr std::size_t kKeepBytes = 2 << 20;

// A freed block holds the link to the next one of its class (every class has room for it).
struct FreeBlock {
  FreeBlock* next;
};

struct ThreadCache {
  std::array<FreeBlock*, kClassSizes.size()> heads{};
  std::size_t kept_bytes = 0;
  bool alive = true;  // false once the thread's cache is destroyed (late frees go to free())
  ~ThreadCache() {
    alive = false;
    for (FreeBlock*& head : heads)
      while (head) std::free(std::exchange(head, head->next));
  }
};

thread_local ThreadCache t_cache;

}  // namespace

std::uint32_t classOf(std::size_t bytes) {
  for (std::uint32_t c = 0; c < kRecordClass; ++c)
    if (bytes <= kClassSizes[c]) return c;
  if (bytes > kRecordFloor && bytes <= kRecordBlock) return kRecordClass;
  return kNoClass;
}

std::size_t classSize(std::uint32_t size_class) {
  return kClassSizes[size_class];
}

void* take(std::uint32_t size_class) {
  FreeBlock*& head = t_cache.heads[size_class];
  if (t_cache.alive && head) {
    t_cache.kept_bytes -= kClassSizes[size_class];
    return std::exchange(head, head->next);
  }
  return std::malloc(kClassSizes[size_class]);
}

void give(std::uint32_t size_class, void* block) {
  if (t_cache.alive && t_cache.kept_bytes + kClassSizes[size_class] <= kKeepBytes) {
    t_cache.kept_bytes += kClassSizes[size_class];
    t_cache.heads[size_class] = new (block) FreeBlock{t_cache.heads[size_class]};
    return;
  }
  std::free(block);
}

std::size_t blockSize(std::size_t bytes) {
  const std::uint32_t c = kCache ? classOf(bytes) : kNoClass;
  return c != kNoClass ? kClassSizes[c] : bytes;
}

void* allocate(std::size_t bytes) {
  const std::uint32_t c = kCache ? classOf(bytes) : kNoClass;
  return c != kNoClass ? take(c) : std::malloc(bytes);
}

void deallocate(void* block, std::size_t bytes) {
  const std::uint32_t c = kCache ? classOf(bytes) : kNoClass;
  if (c != kNoClass)
    give(c, block);
  else
    std::free(block);
}

}  // namespace portico::block_cache
