#pragma once
// Process-wide services that filters may use. They outlive every config snapshot, so state such
// as an open log file survives reloads.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_fetch.h"
#include "core/time_source.h"

namespace portico::api {

// A destination for log lines. write() never blocks the caller: a full queue drops the line
// and counts it.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(std::string_view line) = 0;  // one line, without the trailing newline
};

// How an HTTP log sink batches (other sinks ignore these).
struct LogSinkOptions {
  std::size_t batch_size = 500;                    // lines per POST at most
  std::chrono::milliseconds flush_interval{1000};  // a partial batch waits no longer
  std::chrono::milliseconds timeout{5000};
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Authorization
  bool json_lines = true;  // lines are JSON values; else each is sent as a JSON string
  std::size_t max_buffer_bytes = 1024 * 1024;  // per writing thread; past it, lines are dropped

  bool operator==(const LogSinkOptions&) const = default;
};

class Services {
 public:
  virtual ~Services() = default;
  // "stdout", "stderr", a file path (opened for append, reopened on SIGUSR1),
  // "syslog:udp:HOST:PORT" / "syslog:unix:PATH", or an http:// or https:// URL (batched JSON
  // POSTs). Null when it cannot be opened.
  virtual std::shared_ptr<LogSink> logSink(const std::string& destination,
                                           const LogSinkOptions& options) = 0;
  // Runs `job` off the event loops (CPU-heavy work such as password hashing). The job may
  // complete a filter's asynchronous phase from there. The default runs it at once.
  virtual void runBlocking(std::function<void()> job) { job(); }
  // Outgoing HTTP calls (JWKS, discovery, introspection...). Callbacks run on the client's
  // thread. Without a client (some tests), calls fail at once.
  virtual void fetch(HttpRequest, std::function<void(HttpResponse)> done) {
    HttpResponse r;
    r.error = "no HTTP client";
    done(std::move(r));
  }
  // Time for process-wide state (key-set refreshes, log batches): tests give a ManualTime.
  virtual const TimeSource& time() { return realTime(); }
  // A process-wide object shared by every snapshot under `key` (made on first use): state that
  // must survive reloads, such as fetched key sets.
  virtual std::shared_ptr<void> shared(const std::string&,
                                       const std::function<std::shared_ptr<void>()>& make) {
    return make();
  }
};

}  // namespace portico::api
