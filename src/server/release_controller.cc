#include "server/release_controller.h"

#include <cstdio>

namespace portico::server {

ReleaseController::ReleaseController(RolloutPolicy policy, Clock::time_point started)
    : policy_(std::move(policy)), step_started_(started) {}

int ReleaseController::percent() const {
  switch (state_) {
    case State::Promoted:
      return 100;
    case State::RolledBack:
      return 0;
    case State::Progressing:
      break;
  }
  return policy_.steps.empty() ? 100 : policy_.steps[step_];
}

bool ReleaseController::due(Clock::time_point now) const {
  return state_ == State::Progressing && now - step_started_ >= policy_.interval;
}

ReleaseController::State ReleaseController::judge(const SideFigures& stable,
                                                  const SideFigures& candidate,
                                                  Clock::time_point now) {
  if (state_ != State::Progressing) return state_;
  if (candidate.requests < policy_.min_requests) return state_;  // not enough to judge yet
  char why[256];
  const double increase = candidate.errorRatio() - stable.errorRatio();
  if (increase > policy_.max_5xx_ratio_increase) {
    std::snprintf(why, sizeof why,
                  "5xx ratio %.4f on the candidate vs %.4f stable (+%.4f > %.4f) at %d%%",
                  candidate.errorRatio(), stable.errorRatio(), increase,
                  policy_.max_5xx_ratio_increase, percent());
    reason_ = why;
    state_ = State::RolledBack;
    return state_;
  }
  // A stable side with no requests has no p99 to compare with (at 100%): the 5xx check holds.
  if (stable.requests > 0 && stable.p99_ms > 0 &&
      candidate.p99_ms / stable.p99_ms > policy_.max_p99_ratio) {
    std::snprintf(why, sizeof why,
                  "p99 %.1f ms on the candidate vs %.1f ms stable (%.2fx > %.2fx) at %d%%",
                  candidate.p99_ms, stable.p99_ms, candidate.p99_ms / stable.p99_ms,
                  policy_.max_p99_ratio, percent());
    reason_ = why;
    state_ = State::RolledBack;
    return state_;
  }
  if (step_ + 1 >= policy_.steps.size()) {
    state_ = State::Promoted;
    return state_;
  }
  ++step_;
  step_started_ = now;
  return state_;
}

std::string policyProblem(const RolloutPolicy& policy) {
  if (policy.steps.empty()) return "steps: give at least one (the last is 100)";
  for (std::size_t i = 0; i < policy.steps.size(); ++i) {
    const int s = policy.steps[i];
    if (s < 1 || s > 100) return "steps: each is a percent from 1 to 100";
    if (i > 0 && s <= policy.steps[i - 1]) return "steps: ascending";
  }
  if (policy.steps.back() != 100) return "steps: the last is 100";
  if (policy.interval.count() <= 0) return "interval: must be positive";
  if (policy.max_5xx_ratio_increase < 0 || policy.max_5xx_ratio_increase > 1)
    return "guard.max_5xx_ratio_increase: from 0 to 1";
  if (policy.max_p99_ratio < 1) return "guard.max_p99_ratio: at least 1";
  return "";
}

}  // namespace portico::server
