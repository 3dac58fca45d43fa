#include <gtest/gtest.h>

#include "proxy/worker_context.h"

namespace portico::proxy {
namespace {

std::unique_ptr<UpstreamConnection> conn(asio::io_context& io, std::string target) {
  auto c = std::make_unique<UpstreamConnection>(io);
  c->target = std::move(target);
  return c;
}

TEST(ConnectionPool, ReusesMostRecentAndRespectsMaxIdle) {
  asio::io_context io;
  ConnectionPool pool;
  config::PoolConfig cfg;
  cfg.max_idle = 2;
  auto now = Clock::now();
  auto* first = conn(io, "a").release();
  pool.release(std::unique_ptr<UpstreamConnection>(first), cfg, now);
  auto second = conn(io, "a");
  auto* second_raw = second.get();
  pool.release(std::move(second), cfg, now);
  pool.release(conn(io, "a"), cfg, now);  // over max_idle: closed
  pool.release(conn(io, "b"), cfg, now);
  EXPECT_EQ(pool.idleCount(), 3u);
  EXPECT_EQ(pool.acquire("a").get(), second_raw);
  EXPECT_NE(pool.acquire("a"), nullptr);
  EXPECT_EQ(pool.acquire("a"), nullptr);
  EXPECT_NE(pool.acquire("b"), nullptr);
}

TEST(ConnectionPool, IdleTimeoutClosesConnections) {
  asio::io_context io;
  ConnectionPool pool;
  config::PoolConfig cfg;
  cfg.idle_timeout = std::chrono::seconds(1);
  auto now = Clock::now();
  pool.release(conn(io, "a"), cfg, now);
  pool.sweep(now + std::chrono::milliseconds(500));
  EXPECT_EQ(pool.idleCount(), 1u);
  pool.sweep(now + std::chrono::seconds(2));
  EXPECT_EQ(pool.idleCount(), 0u);
}

// URL calls' origins come and go: past kKeepEmptyTargets targets, a sweep forgets those with
// no idle connection; below that, the table keeps them (no allocation when one comes back).
TEST(ConnectionPool, SweepForgetsTargetsWithNoIdleConnectionPastAFewDozen) {
  asio::io_context io;
  ConnectionPool pool;
  config::PoolConfig cfg;
  cfg.idle_timeout = std::chrono::seconds(1);
  const auto now = Clock::now();
  pool.release(conn(io, "few"), cfg, now);
  ASSERT_NE(pool.acquire("few"), nullptr);
  pool.sweep(now);
  EXPECT_EQ(pool.targetCount(), 1u);  // few targets: the empty one stays

  const std::size_t many = ConnectionPool::kKeepEmptyTargets + 10;
  for (std::size_t i = 0; i < many; ++i) pool.release(conn(io, "t" + std::to_string(i)), cfg, now);
  pool.release(conn(io, "fresh"), cfg, now + std::chrono::milliseconds(900));
  pool.sweep(now + std::chrono::milliseconds(500));
  EXPECT_EQ(pool.targetCount(), many + 1);    // every "t" still has its connection, "few" went
  pool.sweep(now + std::chrono::seconds(1));  // the "t" connections time out, and their targets go
  EXPECT_EQ(pool.targetCount(), 1u);
  EXPECT_EQ(pool.idleCount(), 1u);
  EXPECT_NE(pool.acquire("fresh"), nullptr);
}

TEST(ConnectionPool, ConnectionWithUnreadBytesIsNotKept) {
  asio::io_context io;
  ConnectionPool pool;
  auto c = conn(io, "a");
  c->buffer.commit(3);
  pool.release(std::move(c), config::PoolConfig{}, Clock::now());
  EXPECT_EQ(pool.idleCount(), 0u);
}

TEST(ConnectionPool, AnIdleConnectionsBufferWaitsInTheBufferPool) {
  asio::io_context io;
  BufferPool buffers(BufferPool::kUpstreamBufferSize);
  ConnectionPool pool(&buffers);
  pool.release(conn(io, "a"), config::PoolConfig{}, Clock::now());
  EXPECT_EQ(buffers.spare(), 1u);  // the idle connection holds no buffer
  auto again = pool.acquire("a");
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(again->buffer.parked());
  EXPECT_EQ(again->buffer.writable(), BufferPool::kUpstreamBufferSize);
  EXPECT_EQ(buffers.spare(), 0u);
}

}  // namespace
}  // namespace portico::proxy
