#include "http2/session_memory.h"

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/thread_block_cache.h"

namespace portico::http2::detail {
namespace {

// In front of every block: the block's size, which block_cache::deallocate() wants back; the
// caller may use all of it past the header (16 bytes keep its pointer aligned as malloc's).
struct alignas(16) Header {
  std::size_t block;
};

void* allocate(std::size_t size, void*) {
  if (size > SIZE_MAX - sizeof(Header)) return nullptr;
  const std::size_t bytes = block_cache::blockSize(size + sizeof(Header));
  void* block = block_cache::allocate(bytes);
  if (!block) return nullptr;
  return new (block) Header{bytes} + 1;
}

std::size_t usable(const void* p) {
  return (static_cast<const Header*>(p) - 1)->block - sizeof(Header);
}

void release(void* p, void*) {
  if (!p) return;
  Header* h = static_cast<Header*>(p) - 1;
  block_cache::deallocate(h, h->block);
}

void* allocateZeroed(std::size_t n, std::size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = allocate(n * size, user);
  if (p) std::memset(p, 0, n * size);
  return p;
}

void* reallocate(void* p, std::size_t size, void* user) {
  if (!p) return allocate(size, user);
  const std::size_t have = usable(p);
  if (size <= have) return p;
  void* q = allocate(size, user);
  if (!q) return nullptr;
  std::memcpy(q, p, have);
  release(p, user);
  return q;
}

nghttp2_mem g_memory = {nullptr, &allocate, &release, &allocateZeroed, &reallocate};

}  // namespace

nghttp2_mem* sessionMemory() {
  return &g_memory;
}

}  // namespace portico::http2::detail
