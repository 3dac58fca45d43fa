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
  reason_ = guardProblem(policy_, stable, candidate, percent());
  if (!reason_.empty()) {
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

ReleaseController::State ReleaseController::early(const SideFigures& stable,
                                                  const SideFigures& candidate, int percent) {
  if (state_ != State::Progressing || candidate.requests < policy_.min_requests) return state_;
  reason_ = guardProblem(policy_, stable, candidate, percent, false);
  if (!reason_.empty()) state_ = State::RolledBack;
  return state_;
}

ReleaseController::State ReleaseController::check(const SideFigures& stable,
                                                  const SideFigures& candidate, int percent,
                                                  Clock::time_point now) {
  if (state_ != State::Progressing || candidate.requests < policy_.min_requests) return state_;
  reason_ = guardProblem(policy_, stable, candidate, percent);
  if (!reason_.empty()) state_ = State::RolledBack;
  step_started_ = now;
  return state_;
}

std::string guardProblem(const RolloutPolicy& policy, const SideFigures& stable,
                         const SideFigures& candidate, int percent, bool with_latency) {
  char why[256];
  const double increase = candidate.errorRatio() - stable.errorRatio();
  if (increase > policy.max_5xx_ratio_increase) {
    std::snprintf(why, sizeof why,
                  "5xx ratio %.4f on the candidate vs %.4f stable (+%.4f > %.4f) at %d%%",
                  candidate.errorRatio(), stable.errorRatio(), increase,
                  policy.max_5xx_ratio_increase, percent);
    return why;
  }
  // A stable side with no requests has no p99 to compare with (at 100%): the 5xx check holds.
  // Below kP99NoiseMs of difference the ratio is noise (loopback answers in 0.2 ms vs 0.3 ms).
  if (with_latency && stable.requests > 0 && stable.p99_ms > 0 &&
      candidate.p99_ms / stable.p99_ms > policy.max_p99_ratio &&
      candidate.p99_ms - stable.p99_ms > kP99NoiseMs) {
    std::snprintf(why, sizeof why,
                  "p99 %.1f ms on the candidate vs %.1f ms stable (%.2fx > %.2fx) at %d%%",
                  candidate.p99_ms, stable.p99_ms, candidate.p99_ms / stable.p99_ms,
                  policy.max_p99_ratio, percent);
    return why;
  }
  return "";
}

}  // namespace portico::server
