#pragma once
// What a filter may use of the worker it runs on: objects that belong to one event loop and
// outlive config snapshots (Redis connections). No Boost.Asio here: filters stay I/O-free.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

namespace portico::redis {
class Client;
struct Settings;
}  // namespace portico::redis

namespace portico::api {

class WorkerServices {
 public:
  virtual ~WorkerServices() = default;
  virtual int workerId() const = 0;
  // This worker's connection for `settings` (made on first use, kept across reloads).
  virtual redis::Client& redis(const redis::Settings& settings) = 0;
  // A fresh, non-zero span id (tracing).
  virtual std::uint64_t newSpanId() = 0;
  // A uniformly random number from this worker's generator (sampling decisions).
  virtual std::uint64_t random() = 0;
  // Runs `fn` on this worker after `delay` (a queue timeout, a retry).
  virtual void after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  // Runs `fn` on this worker as soon as it can. The one member other threads may call (a
  // process-wide cache waking the requests of this worker that wait on another's answer).
  virtual void post(std::function<void()> fn) = 0;
  // Counts an event of a filter in /metrics (portico_filter_events_total{filter, event}).
  // For rare events: the counter is looked up by name.
  virtual void countFilterEvent(std::string_view filter, std::string_view event) = 0;
};

}  // namespace portico::api
