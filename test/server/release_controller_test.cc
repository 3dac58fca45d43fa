#include "server/release_controller.h"

#include <gtest/gtest.h>

namespace portico::server {
namespace {

using namespace std::chrono_literals;
using Clock = ReleaseController::Clock;

RolloutPolicy policy() {
  RolloutPolicy p;
  p.steps = {5, 25, 100};
  p.interval = 30s;
  p.max_5xx_ratio_increase = 0.01;
  p.max_p99_ratio = 1.3;
  p.min_requests = 200;
  return p;
}

const SideFigures kGood{10000, 10, 20.0};  // 0.1% 5xx, p99 20 ms

TEST(ReleaseController, AGoodCandidateIsPromotedStepByStep) {
  const auto t0 = Clock::time_point{};
  ReleaseController r(policy(), t0);
  EXPECT_EQ(r.percent(), 5);
  EXPECT_FALSE(r.due(t0 + 29s));  // the clock is the caller's: nothing happens before
  ASSERT_TRUE(r.due(t0 + 30s));
  EXPECT_EQ(r.judge(kGood, {500, 0, 21.0}, t0 + 30s), ReleaseController::State::Progressing);
  EXPECT_EQ(r.percent(), 25);
  EXPECT_FALSE(r.due(t0 + 59s));  // the next step's interval starts when it does
  EXPECT_EQ(r.judge(kGood, {2500, 3, 22.0}, t0 + 60s), ReleaseController::State::Progressing);
  EXPECT_EQ(r.percent(), 100);
  // At 100% the stable side sees nothing: only the 5xx ratio is judged against 0.
  EXPECT_EQ(r.judge({}, {10000, 5, 25.0}, t0 + 90s), ReleaseController::State::Promoted);
  EXPECT_EQ(r.percent(), 100);
  EXPECT_FALSE(r.due(t0 + 200s));
}

TEST(ReleaseController, MoreErrorsRollBackWithTheFigures) {
  ReleaseController r(policy(), Clock::time_point{});
  EXPECT_EQ(r.judge(kGood, {400, 40, 20.0}, Clock::time_point{} + 30s),
            ReleaseController::State::RolledBack);  // 10% vs 0.1%
  EXPECT_EQ(r.percent(), 0);
  EXPECT_NE(r.reason().find("5xx ratio 0.1000 on the candidate vs 0.0010 stable"),
            std::string::npos)
      << r.reason();
  EXPECT_NE(r.reason().find("at 5%"), std::string::npos) << r.reason();
  // Once decided, later figures change nothing.
  EXPECT_EQ(r.judge(kGood, kGood, Clock::time_point{} + 60s), ReleaseController::State::RolledBack);
}

TEST(ReleaseController, SlowerAnswersRollBack) {
  ReleaseController r(policy(), Clock::time_point{});
  EXPECT_EQ(r.judge(kGood, {400, 0, 27.0}, Clock::time_point{} + 30s),  // 1.35x > 1.3x
            ReleaseController::State::RolledBack);
  EXPECT_NE(r.reason().find("p99 27.0 ms on the candidate vs 20.0 ms stable"), std::string::npos)
      << r.reason();
}

TEST(ReleaseController, TooFewRequestsAreNotJudged) {
  ReleaseController r(policy(), Clock::time_point{});
  // 150 requests with every one failing: not enough to judge, the step goes on.
  EXPECT_EQ(r.judge(kGood, {150, 150, 90.0}, Clock::time_point{} + 30s),
            ReleaseController::State::Progressing);
  EXPECT_EQ(r.percent(), 5);
  EXPECT_TRUE(r.due(Clock::time_point{} + 31s));  // judged again at the next chance
}

TEST(ReleaseController, AFollowerOnlyJudgesTheGuard) {
  const auto t0 = Clock::time_point{};
  ReleaseController r(policy(), t0);
  EXPECT_EQ(r.check(kGood, {500, 1, 21.0}, 25, t0 + 30s), ReleaseController::State::Progressing);
  EXPECT_EQ(r.percent(), 5);  // the driving node moves the steps, not a follower
  EXPECT_FALSE(r.due(t0 + 59s));
  EXPECT_EQ(r.check(kGood, {500, 1, 40.0}, 25, t0 + 60s), ReleaseController::State::RolledBack);
  EXPECT_NE(r.reason().find("(2.00x > 1.30x) at 25%"), std::string::npos) << r.reason();
}

TEST(ReleaseController, ABadCandidateGoesBeforeItsIntervalEnds) {
  ReleaseController r(policy(), Clock::time_point{});
  EXPECT_EQ(r.early(kGood, {150, 150, 20.0}, 5), ReleaseController::State::Progressing);  // < 200
  EXPECT_EQ(r.early(kGood, {300, 0, 20.0}, 5), ReleaseController::State::Progressing);
  EXPECT_EQ(r.early(kGood, {300, 0, 90.0}, 5), ReleaseController::State::Progressing);  // p99
  EXPECT_EQ(r.percent(), 5);  // a good one waits for the interval
  EXPECT_EQ(r.early(kGood, {300, 30, 20.0}, 5), ReleaseController::State::RolledBack);
  EXPECT_NE(r.reason().find("5xx ratio 0.1000"), std::string::npos) << r.reason();
}

TEST(ReleaseController, SubMillisecondP99DifferencesAreNoise) {
  ReleaseController r(policy(), Clock::time_point{});
  // 0.9 ms vs 0.3 ms: 3x, but under a millisecond apart.
  EXPECT_EQ(r.judge({10000, 0, 0.3}, {400, 0, 0.9}, Clock::time_point{} + 30s),
            ReleaseController::State::Progressing);
}

}  // namespace
}  // namespace portico::server
