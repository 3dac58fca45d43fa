#include "http2/session_memory.h"

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace portico::http2::detail {
namespace {

// Block sizes (header included); larger requests go to malloc and back.
constexpr std::array<std::size_t, 7> kClassSizes = {64, 128, 256, 512, 1024, 2048, 4096};
constexpr std::size_t kKeepPerClass = 64;  // freed blocks kept per class and thread
constexpr std::uint32_t kNoClass = ~0u;

// In front of every block: the bytes the caller may use and the class (16 bytes keep the
// caller's pointer aligned as malloc's).
struct alignas(16) Header {
  std::size_t usable;
  std::uint32_t size_class;
};

struct ThreadCache {
  std::array<std::array<void*, kKeepPerClass>, kClassSizes.size()> blocks{};
  std::array<std::size_t, kClassSizes.size()> count{};
  bool alive = true;  // false once the thread's cache is destroyed (late frees go to free())
  ~ThreadCache() {
    alive = false;
    for (std::size_t c = 0; c < count.size(); ++c)
      for (std::size_t i = 0; i < count[c]; ++i) std::free(blocks[c][i]);
  }
};

thread_local ThreadCache t_cache;

std::uint32_t classOf(std::size_t block_bytes) {
  for (std::uint32_t c = 0; c < kClassSizes.size(); ++c)
    if (block_bytes <= kClassSizes[c]) return c;
  return kNoClass;
}

void* allocate(std::size_t size, void*) {
  const std::uint32_t c = classOf(size + sizeof(Header));
  void* block = nullptr;
  if (c != kNoClass && t_cache.alive && t_cache.count[c] > 0) {
    block = t_cache.blocks[c][--t_cache.count[c]];
  } else {
    block = std::malloc(c != kNoClass ? kClassSizes[c] : size + sizeof(Header));
    if (!block) return nullptr;
  }
  auto* h = static_cast<Header*>(block);
  h->usable = c != kNoClass ? kClassSizes[c] - sizeof(Header) : size;
  h->size_class = c;
  return h + 1;
}

void release(void* p, void*) {
  if (!p) return;
  Header* h = static_cast<Header*>(p) - 1;
  const std::uint32_t c = h->size_class;
  if (c != kNoClass && t_cache.alive && t_cache.count[c] < kKeepPerClass) {
    t_cache.blocks[c][t_cache.count[c]++] = h;
    return;
  }
  std::free(h);
}

void* allocateZeroed(std::size_t n, std::size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = allocate(n * size, user);
  if (p) std::memset(p, 0, n * size);
  return p;
}

void* reallocate(void* p, std::size_t size, void* user) {
  if (!p) return allocate(size, user);
  const Header* h = static_cast<const Header*>(p) - 1;
  if (size <= h->usable) return p;
  void* q = allocate(size, user);
  if (!q) return nullptr;
  std::memcpy(q, p, h->usable);
  release(p, user);
  return q;
}

nghttp2_mem g_memory = {nullptr, &allocate, &release, &allocateZeroed, &reallocate};

}  // namespace

nghttp2_mem* sessionMemory() {
#if defined(__SANITIZE_ADDRESS__)
  (void)g_memory;
  return nullptr;
#else
  return &g_memory;
#endif
}

}  // namespace portico::http2::detail
