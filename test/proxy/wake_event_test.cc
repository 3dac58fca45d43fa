#include "proxy/wake_event.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace portico::proxy {
namespace {

using boost::system::error_code;

// Waits once on `event`, then records how the wait ended.
Task<void> waitOnce(WakeEvent& event, std::optional<error_code>& result) {
  error_code ec;
  co_await event.async_wait(asio::redirect_error(kUseAwaitable, ec));
  result = ec;
}

TEST(WakeEvent, WakingResumesTheWaiterFromTheEventLoop) {
  asio::io_context io;
  WakeEvent event(io.get_executor());
  std::optional<error_code> result;
  asio::co_spawn(io, waitOnce(event, result), asio::detached);
  io.poll();
  ASSERT_TRUE(event.waiting());
  EXPECT_FALSE(result);

  event.wake();
  EXPECT_FALSE(result) << "resumed inside wake(), not from the loop";
  EXPECT_FALSE(event.waiting());
  io.poll();
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
}

TEST(WakeEvent, AWakeWithNobodyWaitingIsNotRemembered) {
  asio::io_context io;
  WakeEvent event(io.get_executor());
  event.wake();
  std::optional<error_code> result;
  asio::co_spawn(io, waitOnce(event, result), asio::detached);
  io.poll();
  EXPECT_FALSE(result);
  EXPECT_TRUE(event.waiting());
  event.wake();
  io.poll();
  EXPECT_TRUE(result);
}

TEST(WakeEvent, TheSameEventServesWaitAfterWait) {
  asio::io_context io;
  WakeEvent event(io.get_executor());
  int woken = 0;
  auto loop = [&]() -> Task<void> {
    error_code ec;
    for (int i = 0; i < 3; ++i) {
      co_await event.async_wait(asio::redirect_error(kUseAwaitable, ec));
      ++woken;
    }
  };
  asio::co_spawn(io, loop(), asio::detached);
  for (int i = 1; i <= 3; ++i) {
    io.poll();
    event.wake();
    io.poll();
    EXPECT_EQ(woken, i);
  }
}

TEST(WakeEvent, AnEventGoingAwayAbortsItsWaiter) {
  asio::io_context io;
  auto event = std::make_unique<WakeEvent>(io.get_executor());
  std::optional<error_code> result;
  asio::co_spawn(io, waitOnce(*event, result), asio::detached);
  io.poll();
  event.reset();
  io.poll();
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

// A coroutine parked on an event that its own frame owns (as a stream object's coroutine
// owns the object): when the io_context goes, the registry destroys the parked handler and
// with it the frame and the event — nothing is leaked, nothing runs.
struct Counted {
  explicit Counted(int& alive) : alive(alive) { ++alive; }
  ~Counted() { --alive; }
  int& alive;
};

Task<void> parkOnOwnEvent(int& alive, bool& resumed) {
  Counted guard(alive);
  auto event = std::make_unique<WakeEvent>(co_await asio::this_coro::executor);
  error_code ec;
  co_await event->async_wait(asio::redirect_error(kUseAwaitable, ec));
  resumed = true;
}

TEST(WakeEvent, ShuttingDownTheLoopDestroysParkedWaiters) {
  int alive = 0;
  bool resumed = false;
  {
    asio::io_context io;
    for (int i = 0; i < 3; ++i) asio::co_spawn(io, parkOnOwnEvent(alive, resumed), asio::detached);
    io.poll();
    EXPECT_EQ(alive, 3);
  }
  EXPECT_EQ(alive, 0);
  EXPECT_FALSE(resumed);
}

// A wake posted but not yet run when the loop goes: Asio destroys the queued completion.
Task<void> parkExposed(int& alive, bool& resumed, WakeEvent*& event) {
  Counted guard(alive);
  WakeEvent own(co_await asio::this_coro::executor);
  event = &own;
  error_code ec;
  co_await own.async_wait(asio::redirect_error(kUseAwaitable, ec));
  event = nullptr;
  resumed = true;
}

TEST(WakeEvent, AWakeStillQueuedAtShutdownIsDestroyed) {
  int alive = 0;
  bool resumed = false;
  WakeEvent* event = nullptr;
  {
    asio::io_context io;
    asio::co_spawn(io, parkExposed(alive, resumed, event), asio::detached);
    io.poll();
    ASSERT_NE(event, nullptr);
    event->wake();
    EXPECT_FALSE(event->waiting());
    EXPECT_EQ(alive, 1);
  }
  EXPECT_EQ(alive, 0);
  EXPECT_FALSE(resumed);
}

}  // namespace
}  // namespace portico::proxy
