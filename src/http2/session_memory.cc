#include "http2/session_memory.h"

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/thread_block_cache.h"

namespace portico::http2::detail {
namespace {

// In front of every block: the bytes the caller may use and the block's class in the
// per-thread cache (16 bytes keep the caller's pointer aligned as malloc's).
struct alignas(16) Header {
  std::size_t usable;
  std::uint32_t size_class;
};

void* allocate(std::size_t size, void*) {
  const std::uint32_t c = block_cache::classOf(size + sizeof(Header));
  void* block =
      c != block_cache::kNoClass ? block_cache::take(c) : std::malloc(size + sizeof(Header));
  if (!block) return nullptr;
  auto* h = static_cast<Header*>(block);
  h->usable = c != block_cache::kNoClass ? block_cache::classSize(c) - sizeof(Header) : size;
  h->size_class = c;
  return h + 1;
}

void release(void* p, void*) {
  if (!p) return;
  Header* h = static_cast<Header*>(p) - 1;
  if (h->size_class != block_cache::kNoClass)
    block_cache::give(h->size_class, h);
  else
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
