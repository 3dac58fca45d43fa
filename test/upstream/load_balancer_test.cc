#include "upstream/lb/load_balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "upstream/lb/consistent_hash.h"

namespace portico::upstream {
namespace {

TEST(RoundRobin, SmoothWeightedSequence) {
  auto lb = makeLoadBalancer(config::Balance::RoundRobin, {5, 1, 1}, nullptr, 1);
  std::string seq;
  for (int i = 0; i < 7; ++i) seq += static_cast<char>('a' + lb->pick(0, {}));
  EXPECT_EQ(seq, "aabacaa");  // nginx's smooth weighted round robin
}

TEST(RoundRobin, SkipsExcluded) {
  auto lb = makeLoadBalancer(config::Balance::RoundRobin, {1, 1, 1}, nullptr, 1);
  Excluded ex{1, 0, 1};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(lb->pick(0, ex), 1);
  EXPECT_EQ(lb->pick(0, Excluded{1, 1, 1}), -1);
}

TEST(Random, FollowsWeights) {
  auto lb = makeLoadBalancer(config::Balance::Random, {3, 1}, nullptr, 42);
  int counts[2] = {0, 0};
  for (int i = 0; i < 40000; ++i) ++counts[lb->pick(0, {})];
  EXPECT_NEAR(counts[0] / 40000.0, 0.75, 0.02);
}

TEST(LeastRequest, PrefersTheLessLoadedTarget) {
  auto lb = makeLoadBalancer(config::Balance::LeastRequest, {1, 1}, nullptr, 7);
  for (int i = 0; i < 10; ++i) lb->onStart(0);  // target 0 is busy
  int picked_idle = 0;
  for (int i = 0; i < 1000; ++i) picked_idle += lb->pick(0, {}) == 1;
  // Two choices: whenever the pair holds target 1 it wins (3 of 4 pairs).
  EXPECT_GT(picked_idle, 700);
  for (int i = 0; i < 10; ++i) lb->onFinish(0);
  int even = 0;
  for (int i = 0; i < 1000; ++i) even += lb->pick(0, {}) == 1;
  EXPECT_NEAR(even / 1000.0, 0.5, 0.08);
}

std::vector<ConsistentHash::Member> members(int n) {
  std::vector<ConsistentHash::Member> m;
  for (int i = 0; i < n; ++i) m.push_back({"10.0.0." + std::to_string(i) + ":80", 1});
  return m;
}

void expectMinimalMovement(std::shared_ptr<const ConsistentHash> (*make)(
                               const std::vector<ConsistentHash::Member>&, std::uint32_t),
                           std::uint32_t param) {
  auto before = make(members(10), param);
  auto after = make(members(11), param);
  const int keys = 20000;
  int moved = 0;
  std::map<int, int> spread;
  for (int k = 0; k < keys; ++k) {
    auto h = hash64("key-" + std::to_string(k));
    int a = before->lookup(h, {}), b = after->lookup(h, {});
    ++spread[a];
    if (a != b) {
      ++moved;
      EXPECT_EQ(b, 10) << "a key moved between two old targets";
    }
  }
  // Adding 1 target to 10 should move about 1/11 of the keys.
  EXPECT_NEAR(moved / static_cast<double>(keys), 1.0 / 11, 0.03);
  for (const auto& [target, count] : spread) EXPECT_NEAR(count / double(keys), 0.1, 0.04);
}

TEST(ConsistentHash, RingMovesAboutOneNth) {
  expectMinimalMovement(makeRing, 160);
}
TEST(ConsistentHash, MaglevMovesAboutOneNth) {
  auto before = makeMaglev(members(10), 65537);
  auto after = makeMaglev(members(11), 65537);
  int moved = 0;
  const int keys = 20000;
  for (int k = 0; k < keys; ++k) {
    auto h = hash64("key-" + std::to_string(k));
    moved += before->lookup(h, {}) != after->lookup(h, {});
  }
  // Maglev trades a little extra disruption for perfect balance.
  EXPECT_LT(moved / static_cast<double>(keys), 0.15);
}

TEST(ConsistentHash, SameKeySameTargetAndExclusion) {
  auto ring = makeRing(members(5), 160);
  auto h = hash64("user-42");
  int t = ring->lookup(h, {});
  EXPECT_EQ(ring->lookup(h, {}), t);
  Excluded ex(5, 0);
  ex[static_cast<std::size_t>(t)] = 1;
  int other = ring->lookup(h, ex);
  EXPECT_NE(other, t);
  EXPECT_GE(other, 0);
  auto maglev = makeMaglev(members(5), 65537);
  int m = maglev->lookup(h, {});
  ex.assign(5, 0);
  ex[static_cast<std::size_t>(m)] = 1;
  EXPECT_NE(maglev->lookup(h, ex), m);
}

TEST(ConsistentHash, BalancerUsesTheKey) {
  auto lb =
      makeLoadBalancer(config::Balance::ConsistentHash, {1, 1, 1}, makeRing(members(3), 160), 1);
  auto h = hash64("same");
  int first = lb->pick(h, {});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lb->pick(h, {}), first);
}

}  // namespace
}  // namespace portico::upstream
