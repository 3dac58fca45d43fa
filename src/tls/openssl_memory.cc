#include "tls/openssl_memory.h"

#include <malloc.h>
#include <openssl/crypto.h>

#include <cstdlib>

#include "core/thread_block_cache.h"

namespace portico::tls {
namespace {

// The block cache's class for record buffers (block_cache::kRecordFloor, kRecordBlock):
// OpenSSL's read buffer is 16,584 bytes and its write buffer 16,712 with the options Portico
// sets. (Under AddressSanitizer the cache's sized blocks are plain mallocs, freed at once.)
using block_cache::kRecordBlock;
using block_cache::kRecordFloor;

// A block of the class, or any malloc block at least as large and of about its size (malloc
// rounds up by less than 64 bytes): either can serve the class's next take. Found by the size
// malloc gives a block, so the other allocations need no header.
bool isRecordBlock(void* p) {
  const std::size_t usable = malloc_usable_size(p);
  return usable >= kRecordBlock && usable < kRecordBlock + 64;
}

void* allocateHook(std::size_t size, const char*, int) {
  return detail::allocate(size);
}
void* reallocateHook(void* p, std::size_t size, const char*, int) {
  return detail::reallocate(p, size);
}
void releaseHook(void* p, const char*, int) {
  detail::release(p);
}

}  // namespace

namespace detail {

void* allocate(std::size_t size) {
  if (size > kRecordFloor && size <= kRecordBlock) return block_cache::allocate(kRecordBlock);
  return std::malloc(size);
}

// Every block is malloc's, the cached ones included.
void* reallocate(void* p, std::size_t size) {
  return std::realloc(p, size);
}

void release(void* p) {
  if (p && isRecordBlock(p))
    block_cache::deallocate(p, kRecordBlock);
  else
    std::free(p);
}

}  // namespace detail

bool useCachedMemory() {
  return CRYPTO_set_mem_functions(&allocateHook, &reallocateHook, &releaseHook) == 1;
}

}  // namespace portico::tls
