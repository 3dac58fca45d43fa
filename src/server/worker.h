#pragma once
// A worker thread: one event loop, its own listening sockets, sessions, upstream pools and
// counters. Talks to the control thread only through posted calls.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "observability/metrics.h"
#include "snapshot/snapshot.h"

namespace portico::server {

class Worker {
 public:
  Worker(int id, observability::WorkerStats& stats);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Swaps in `snapshot` for new requests. `listeners` maps each listen address to this
  // worker's socket for it: new addresses start accepting (the worker owns the fd), addresses
  // that are gone stop. Fds for addresses already open are ignored.
  // `installed` (if given) runs on the worker's thread once the snapshot is in place.
  void install(std::shared_ptr<const snapshot::Snapshot> snapshot,
               std::map<std::string, int> listeners, std::function<void()> installed = {});
  // Serves `candidate` to `percent` of new requests beside the snapshot (a config release,
  // ADR 0014); null ends the release. `installed` as for install().
  void installCandidate(std::shared_ptr<const snapshot::Snapshot> candidate, int percent,
                        std::function<void()> installed = {});
  // Stops accepting, closes idle connections; in-flight requests finish, then their
  // connections close.
  void drain();
  // Stops the loop (whatever is still open is closed) and joins the thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::server
