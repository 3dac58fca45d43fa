#include "core/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

namespace portico {
namespace {

// A job that throws is logged and the next one still runs (before, the exception left the
// thread and ended the process).
TEST(BlockingPool, AJobThatThrowsIsLoggedAndTheNextOneRuns) {
  std::atomic<int> ran{0};
  {
    BlockingPool pool(1);
    pool.post([] { throw std::runtime_error("a bug"); });
    pool.post([&] { ++ran; });
  }  // finishes the queued jobs
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace portico
