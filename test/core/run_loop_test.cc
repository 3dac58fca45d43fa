#include "core/run_loop.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

namespace portico {
namespace {

TEST(RunLoop, AHandlerThatThrowsIsLoggedAndTheLoopGoesOn) {
  boost::asio::io_context io;
  int ran = 0;
  boost::asio::post(io, [] { throw std::runtime_error("a bug"); });
  boost::asio::post(io, [&] { ++ran; });
  boost::asio::post(io, [] { throw 42; });
  boost::asio::post(io, [&] { ++ran; });
  EXPECT_EQ(runLoop(io, "test"), 2u);
  EXPECT_EQ(ran, 2);
}

TEST(RunLoop, ReturnsWhenTheLoopStops) {
  boost::asio::io_context io;
  bool after = false;
  boost::asio::post(io, [&] { io.stop(); });
  boost::asio::post(io, [&] { after = true; });
  EXPECT_EQ(runLoop(io, "test"), 0u);
  EXPECT_FALSE(after);
}

}  // namespace
}  // namespace portico
