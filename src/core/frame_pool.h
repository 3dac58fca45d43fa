#pragma once
// Coroutine frames from a per-thread pool (issue 17: "give the coroutines a per-worker frame
// allocator"). Boost.Asio 1.81 allocates every awaitable's frame through
// thread_info_base::allocate<awaitable_frame_tag>: a 16-slot cache searched first-fit that
// frees a cached block on every miss and never keeps a frame above 1020 bytes. A proxied
// request nests about six frames (260 B to 1.5 KiB); with 64 requests in flight nearly every
// one came from malloc, the largest through glibc's slow path. This explicit specialisation
// of those two functions sends frames to core/thread_block_cache.h instead.
//
// It must be seen by every translation unit that instantiates an awaitable (one that used
// Asio's own would mix the two allocators), so CMakeLists.txt force-includes this header into
// every source file. Boost 1.81 only: another version keeps Asio's allocator.
#include <boost/version.hpp>

#if BOOST_VERSION / 100 == 1081 && !defined(BOOST_ASIO_HAS_IO_URING)
#define PORTICO_FRAME_POOL 1
#include <boost/asio/detail/thread_info_base.hpp>

namespace boost::asio::detail {
template <>
void* thread_info_base::allocate(thread_info_base::awaitable_frame_tag, thread_info_base*,
                                 std::size_t size, std::size_t align);
template <>
void thread_info_base::deallocate(thread_info_base::awaitable_frame_tag, thread_info_base*,
                                  void* pointer, std::size_t size);
}  // namespace boost::asio::detail
#endif
