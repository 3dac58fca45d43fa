#include "observability/line_rings.h"

#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace portico::observability {
namespace {

TEST(LineRingsTest, LinesComeOutWholeAndInOrderAcrossTheWrap) {
  LineRings rings(4096);
  std::string out;
  // 4096-byte ring, 100-byte lines: the ring wraps many times; every line stays whole.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 30; ++i) {
      const std::string line = std::to_string(round * 100 + i) + std::string(90, 'x');
      ASSERT_TRUE(rings.push(line));
    }
    out.clear();
    EXPECT_EQ(rings.drain(out, 12), 12u);  // counted, up to a line boundary
    std::string rest;
    rings.drain(rest);
    out += rest;
    std::size_t pos = 0;
    for (int i = 0; i < 30; ++i) {
      const std::size_t end = out.find('\n', pos);
      ASSERT_NE(end, std::string::npos);
      EXPECT_EQ(out.substr(pos, end - pos), std::to_string(round * 100 + i) + std::string(90, 'x'));
      pos = end + 1;
    }
    EXPECT_EQ(pos, out.size());
    EXPECT_TRUE(rings.empty());
  }
}

TEST(LineRingsTest, DrainPiecesHandsOverEveryByteWithoutCopying) {
  LineRings rings(4096);
  std::string expected, got;
  for (int round = 0; round < 20; ++round) {  // 20 x 700 bytes through a 4096-byte ring: wraps
    for (int i = 0; i < 5; ++i) {
      const std::string line =
          std::to_string(round) + "/" + std::to_string(i) + std::string(130, 'z');
      ASSERT_TRUE(rings.push(line));
      expected += line + "\n";
    }
    int pieces = 0;
    rings.drainPieces([&](std::string_view piece) {
      got.append(piece);
      ++pieces;
    });
    EXPECT_LE(pieces, 2);
    EXPECT_TRUE(rings.empty());
  }
  EXPECT_EQ(got, expected);
}

TEST(LineRingsTest, AFullRingRefusesUntilDrained) {
  LineRings rings(4096);
  const std::string line(1000, 'y');
  int pushed = 0;
  while (rings.push(line)) ++pushed;
  EXPECT_EQ(pushed, 4);  // 4 x 1001 bytes fit in 4096
  std::string out;
  EXPECT_EQ(rings.drain(out, 1), 1u);
  EXPECT_TRUE(rings.push(line));
  EXPECT_FALSE(rings.push(line));
}

TEST(LineRingsTest, ThreadsWriteWhileOneThreadDrains) {
  LineRings rings(1 << 16);
  constexpr int kThreads = 4, kLines = 20000;
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) {
        const std::string line = std::to_string(t) + ":" + std::to_string(i);
        while (!rings.push(line)) std::this_thread::yield();
      }
      done.fetch_add(1);
    });
  std::string all;
  while (done.load() < kThreads || !rings.empty()) rings.drain(all);
  for (auto& w : writers) w.join();
  rings.drain(all);
  // Every line exactly once, each thread's in order.
  std::vector<int> next(kThreads, 0);
  std::size_t pos = 0, count = 0;
  while (pos < all.size()) {
    const std::size_t end = all.find('\n', pos);
    const std::string line = all.substr(pos, end - pos);
    const int t = std::stoi(line.substr(0, line.find(':')));
    EXPECT_EQ(std::stoi(line.substr(line.find(':') + 1)), next[t]++);
    ++count;
    pos = end + 1;
  }
  EXPECT_EQ(count, static_cast<std::size_t>(kThreads * kLines));
}

}  // namespace
}  // namespace portico::observability
