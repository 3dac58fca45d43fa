#pragma once
// Active health checks: every target of an upstream with `health_check` is probed on its
// interval from the control thread (through the process's HTTP client, never on a worker);
// results move the target's shared health state, which the workers read on each request.
#include <memory>

#include "snapshot/snapshot.h"

namespace boost::asio {
class io_context;
}

namespace portico::server {

class HealthChecker {
 public:
  HealthChecker(boost::asio::io_context& io, api::Services& services);
  ~HealthChecker();
  // The targets to probe are those of `snapshot`; probes of targets still there keep their
  // schedule and counts.
  void update(const snapshot::Snapshot& snapshot);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace portico::server
