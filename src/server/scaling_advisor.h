#pragma once
// Scaling signals: for each upstream with `scaling`, the control thread samples requests in
// flight (every 100 ms) and, every `interval`, turns them and the workers' counters (throughput,
// errors, latency) into a recommended replica count, with a tolerance band and a cool-down so
// that it moves rarely. The figures go to /metrics (for an HPA or KEDA) and each change of the
// recommendation is POSTed as a JSON event to the upstream's webhook, with retries.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "observability/metrics.h"
#include "snapshot/snapshot.h"

namespace boost::asio {
class io_context;
}

namespace portico::server {

class ScalingAdvisor {
 public:
  using SnapshotSource = std::function<std::shared_ptr<const snapshot::Snapshot>()>;
  ScalingAdvisor(boost::asio::io_context& io, api::Services& services,
                 const std::vector<std::unique_ptr<observability::WorkerStats>>& stats,
                 SnapshotSource snapshot);
  ~ScalingAdvisor();
  void appendMetrics(std::string& out) const;

  struct Figures {
    double in_flight = 0;
    double rps = 0;
    double error_ratio = 0;
    double p50 = 0, p95 = 0, p99 = 0;  // seconds
  };
  // The pure decision, for tests: what to recommend now given the last recommendation.
  static std::uint32_t desired(const config::ScalingConfig& cfg, const Figures& f);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace portico::server
