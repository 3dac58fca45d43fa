#include "core/time_source.h"

#include <ctime>

namespace portico {

TimeSource::Steady::time_point RealTime::coarseSteady() const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return Steady::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

const TimeSource& realTime() {
  static const RealTime clock;  // stateless
  return clock;
}

}  // namespace portico
