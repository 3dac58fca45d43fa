#pragma once
// Time as Portico reads it, injected rather than read from the clocks directly: steady time for
// deadlines, windows, ejections, circuit breakers and caches; system time for logs and token
// expiry. A worker gets one (WorkerContext::time) and everything on its request path reads
// time from there, so unit tests drive a ManualTime and advance it instead of sleeping.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace portico {

class TimeSource {
 public:
  using Steady = std::chrono::steady_clock;
  using System = std::chrono::system_clock;
  virtual ~TimeSource() = default;
  virtual Steady::time_point steady() const = 0;
  // Steady time at a few milliseconds' resolution (cheaper to read): for deadlines enforced
  // by a sweeper that ticks every 25 ms anyway.
  virtual Steady::time_point coarseSteady() const = 0;
  virtual System::time_point system() const = 0;

  std::int64_t steadyMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady().time_since_epoch())
        .count();
  }
};

// The machine's clocks. Stateless: one instance serves every thread.
class RealTime final : public TimeSource {
 public:
  Steady::time_point steady() const override { return Steady::now(); }
  Steady::time_point coarseSteady() const override;
  System::time_point system() const override { return System::now(); }
};

const TimeSource& realTime();

// A clock that moves only when told (tests). Safe to read from several threads.
class ManualTime final : public TimeSource {
 public:
  ManualTime()
      : steady_(Steady::now().time_since_epoch().count()),
        system_(System::now().time_since_epoch().count()) {}
  Steady::time_point steady() const override {
    return Steady::time_point(Steady::duration(steady_.load()));
  }
  Steady::time_point coarseSteady() const override { return steady(); }
  System::time_point system() const override {
    return System::time_point(System::duration(system_.load()));
  }
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) {
    steady_ += std::chrono::duration_cast<Steady::duration>(d).count();
    system_ += std::chrono::duration_cast<System::duration>(d).count();
  }

 private:
  std::atomic<Steady::rep> steady_;
  std::atomic<System::rep> system_;
};

}  // namespace portico
