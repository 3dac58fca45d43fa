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

namespace portico::server {

struct RolloutPolicy {
  std::vector<int> steps{5, 25, 100};  // percent of requests on the candidate, ascending, to 100
  std::chrono::milliseconds interval{30000};
  double max_5xx_ratio_increase = 0.01;  // candidate's 5xx ratio minus the stable one's
  double max_p99_ratio = 1.3;            // candidate's p99 over the stable one's
  std::uint64_t min_requests = 200;      // on the candidate before an interval is judged
};

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

 private:
  RolloutPolicy policy_;
  std::size_t step_ = 0;
  Clock::time_point step_started_;
  State state_ = State::Progressing;
  std::string reason_;
};

// Checks a policy: steps ascending within 1..100 and ending at 100, a positive interval, and
// bounds that make sense; "" when it is fine, else what is wrong.
std::string policyProblem(const RolloutPolicy& policy);

}  // namespace portico::server
