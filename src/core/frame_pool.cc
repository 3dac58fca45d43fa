#include "core/frame_pool.h"

#if defined(PORTICO_FRAME_POOL)
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "core/thread_block_cache.h"

namespace boost::asio::detail {

// Under AddressSanitizer frames come from malloc and go back at once, so that a use after a
// frame's end stays visible.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheFrames = false;
#else
constexpr bool kCacheFrames = true;
#endif

template <>
void* thread_info_base::allocate(thread_info_base::awaitable_frame_tag, thread_info_base*,
                                 std::size_t size, std::size_t align) {
  const std::uint32_t c = portico::block_cache::classOf(size);
  const std::size_t a = std::max(align, alignof(std::max_align_t));
  void* block = nullptr;
  if (kCacheFrames && c != portico::block_cache::kNoClass && a == alignof(std::max_align_t)) {
    block = portico::block_cache::take(c);
  } else {
    // A block of the class's size: deallocate() may give it to the cache.
    const std::size_t bytes =
        c != portico::block_cache::kNoClass ? portico::block_cache::classSize(c) : size;
    block = std::aligned_alloc(a, (bytes + a - 1) / a * a);
  }
  if (!block) throw std::bad_alloc();
  return block;
}

template <>
void thread_info_base::deallocate(thread_info_base::awaitable_frame_tag, thread_info_base*,
                                  void* pointer, std::size_t size) {
  const std::uint32_t c = portico::block_cache::classOf(size);
  if (kCacheFrames && c != portico::block_cache::kNoClass)
    portico::block_cache::give(c, pointer);
  else
    std::free(pointer);
}

}  // namespace boost::asio::detail
#endif
