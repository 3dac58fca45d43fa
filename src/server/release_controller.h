#pragma once
// A config release (ADR 0014): the candidate snapshot takes a growing share of requests, step by
// step, while its figures over each interval stay within the guard compared with the stable
// snapshot's over the same interval; it is promoted after the last step, or rolled back the
// first time the guard fails. Pure logic on the control thread: the caller feeds both sides'
// figures and the time (injected, so tests advance it).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/model.h"

namespace portico::server {

using RolloutPolicy = config::RolloutConfig;

// One side's requests over an interval.
struct SideFigures {
  std::uint64_t requests = 0;
  std::uint64_t errors_5xx = 0;
  double p99_ms = 0;

  double errorRatio() const {
    return requests ? static_cast<double>(errors_5xx) / static_cast<double>(requests) : 0;
  }
};

class ReleaseController {
 public:
  enum class State { Progressing, Promoted, RolledBack };
  using Clock = std::chrono::steady_clock;

  ReleaseController(RolloutPolicy policy, Clock::time_point started);

  State state() const { return state_; }
  // The candidate's share now (0 once rolled back, 100 once promoted).
  int percent() const;
  // Why it was rolled back, with both sides' figures; "" otherwise.
  const std::string& reason() const { return reason_; }

  // Whether an interval has passed since the current step began.
  bool due(Clock::time_point now) const;
  // Judges the interval that ended at `now` (call when due()): rolls back, holds (the
  // candidate saw fewer than min_requests: the step goes on), moves to the next step, or
  // promotes after the last one. The figures are both sides' over that interval only.
  State judge(const SideFigures& stable, const SideFigures& candidate, Clock::time_point now);
  // Between judgements (the interval is not over): rolls back at once when the candidate saw
  // min_requests since the step began and its 5xx ratio already breaks the guard; otherwise
  // nothing changes. A failing candidate goes as soon as it shows; latency is judged over whole
  // intervals (the p99 of a partial one is mostly its slowest request: a cold pool's connect).
  State early(const SideFigures& stable, const SideFigures& candidate, int percent);
  // For a node that follows another node's release (etcd): judges the guard only, never moves
  // a step (the driving node does); rolls back or starts the next interval.
  // `percent`: the share the driving node set.
  State check(const SideFigures& stable, const SideFigures& candidate, int percent,
              Clock::time_point now);

 private:
  RolloutPolicy policy_;
  std::size_t step_ = 0;
  Clock::time_point step_started_;
  State state_ = State::Progressing;
  std::string reason_;
};

// Why the candidate's figures break the guard against the stable side's over the same interval
// (both sides' figures and the share, for the record), or "" when they hold. A p99 only counts
// when it is also more than kP99NoiseMs slower; `with_latency` false: the 5xx ratio only.
inline constexpr double kP99NoiseMs = 1.0;
std::string guardProblem(const RolloutPolicy& policy, const SideFigures& stable,
                         const SideFigures& candidate, int percent, bool with_latency = true);

}  // namespace portico::server
