#include "core/frame_pool.h"

#if defined(PORTICO_FRAME_POOL)
#include <cstddef>
#include <cstdlib>
#include <new>

#include "core/thread_block_cache.h"

namespace boost::asio::detail {

template <>
void* thread_info_base::allocate(thread_info_base::awaitable_frame_tag, thread_info_base*,
                                 std::size_t size, std::size_t align) {
  void* block = nullptr;
  if (align <= alignof(std::max_align_t)) {
    block = portico::block_cache::allocate(size);
  } else {
    // A block of the cache's size for `size`: deallocate() may give it to the cache.
    const std::size_t bytes = portico::block_cache::blockSize(size);
    block = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  }
  if (!block) throw std::bad_alloc();
  return block;
}

template <>
void thread_info_base::deallocate(thread_info_base::awaitable_frame_tag, thread_info_base*,
                                  void* pointer, std::size_t size) {
  portico::block_cache::deallocate(pointer, size);
}

}  // namespace boost::asio::detail
#endif
