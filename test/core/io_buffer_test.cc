#include "core/io_buffer.h"

#include <gtest/gtest.h>

namespace portico {
namespace {

TEST(IoBuffer, AParkedBufferHasNoStorageUntilUnparked) {
  BufferPool pool;
  IoBuffer in;
  EXPECT_TRUE(in.parked());
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(in.readable().size(), 0u);
  in.unpark(pool);
  EXPECT_FALSE(in.parked());
  EXPECT_EQ(in.writable(), BufferPool::kClientBufferSize);
}

TEST(IoBuffer, ParkingGivesTheStorageToThePoolForTheNextBuffer) {
  BufferPool pool;
  IoBuffer a;
  a.unpark(pool);
  const char* storage = a.writePtr();
  a.park(pool);
  EXPECT_TRUE(a.parked());
  EXPECT_EQ(pool.spare(), 1u);
  IoBuffer b;
  b.unpark(pool);
  EXPECT_EQ(b.writePtr(), storage);  // reused, not allocated
  EXPECT_EQ(pool.spare(), 0u);
}

TEST(IoBuffer, ABufferWithBytesStaysUnparked) {
  BufferPool pool;
  IoBuffer in;
  in.unpark(pool);
  in.writePtr()[0] = 'x';
  in.commit(1);
  in.park(pool);
  EXPECT_FALSE(in.parked());
  EXPECT_EQ(in.readable(), "x");
  EXPECT_EQ(pool.spare(), 0u);
}

TEST(IoBuffer, AGrownBufferIsFreedNotPooled) {
  BufferPool pool;
  IoBuffer in;
  in.unpark(pool);
  in.reserve(BufferPool::kClientBufferSize * 2);
  in.park(pool);
  EXPECT_TRUE(in.parked());
  EXPECT_EQ(pool.spare(), 0u);
}

TEST(BufferPool, KeepsAtMostItsLimit) {
  BufferPool pool(BufferPool::kClientBufferSize, 2);
  IoBuffer a, b, c;
  for (IoBuffer* in : {&a, &b, &c}) in->unpark(pool);
  for (IoBuffer* in : {&a, &b, &c}) in->park(pool);
  EXPECT_EQ(pool.spare(), 2u);
}

// A pool of larger buffers (upstream connections') hands out and takes back its own size; a
// buffer of another size is not kept there.
TEST(BufferPool, APoolOfLargerBuffersKeepsItsOwnSize) {
  BufferPool upstream(BufferPool::kUpstreamBufferSize);
  IoBuffer in;
  in.unpark(upstream);
  EXPECT_EQ(in.writable(), BufferPool::kUpstreamBufferSize);
  in.park(upstream);
  EXPECT_EQ(upstream.spare(), 1u);
  BufferPool client;
  IoBuffer other;
  other.unpark(client);
  other.park(upstream);
  EXPECT_TRUE(other.parked());
  EXPECT_EQ(upstream.spare(), 1u);  // freed, not pooled
}

}  // namespace
}  // namespace portico
