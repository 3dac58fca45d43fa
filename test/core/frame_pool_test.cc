#include "core/frame_pool.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <cstring>

#include "core/sanitizers.h"

namespace portico {
namespace {

namespace asio = boost::asio;
using asio::detail::thread_info_base;

#if defined(PORTICO_FRAME_POOL) && !defined(PORTICO_ASAN)
TEST(FramePool, AFreedFrameIsReusedForTheNextOfItsSizeClass) {
  // Asio's own cache never kept a frame above 1020 bytes; the pool keeps them up to 4 KiB.
  for (const std::size_t size : {200u, 700u, 1500u, 4000u}) {
    void* a = thread_info_base::allocate(thread_info_base::awaitable_frame_tag(), nullptr, size);
    std::memset(a, 0x5a, size);
    thread_info_base::deallocate(thread_info_base::awaitable_frame_tag(), nullptr, a, size);
    void* b =
        thread_info_base::allocate(thread_info_base::awaitable_frame_tag(), nullptr, size - 10);
    EXPECT_EQ(a, b) << size;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % alignof(std::max_align_t), 0u);
    thread_info_base::deallocate(thread_info_base::awaitable_frame_tag(), nullptr, b, size - 10);
  }
}

TEST(FramePool, FramesAbove4KiBGoToMalloc) {
  void* a = thread_info_base::allocate(thread_info_base::awaitable_frame_tag(), nullptr, 9000);
  std::memset(a, 0, 9000);
  thread_info_base::deallocate(thread_info_base::awaitable_frame_tag(), nullptr, a, 9000);
}
#endif

asio::awaitable<int> leaf(int v) {
  co_return v + 1;
}
asio::awaitable<int> nested(int depth) {
  int sum = 0;
  for (int i = 0; i < depth; ++i) sum += co_await leaf(i);
  co_return sum;
}

// Whatever allocates them, coroutine frames work: many nested, many at once.
TEST(FramePool, CoroutinesRunOnPooledFrames) {
  asio::io_context io;
  int done = 0;
  for (int i = 0; i < 200; ++i)
    asio::co_spawn(io, nested(50), [&](std::exception_ptr e, int sum) {
      EXPECT_FALSE(e);
      EXPECT_EQ(sum, 50 * 51 / 2);
      ++done;
    });
  io.run();
  EXPECT_EQ(done, 200);
}

}  // namespace
}  // namespace portico
