#pragma once
// Process-wide services that filters may use. They outlive every config snapshot, so state such
// as an open log file survives reloads.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "client/http_client.h"

namespace portico::api {

// A destination for log lines. write() never blocks the caller: a full queue drops the line
// and counts it.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(std::string_view line) = 0;  // one line, without the trailing newline
};

class Services {
 public:
  virtual ~Services() = default;
  // "stdout", "stderr" or a file path (opened for append, reopened on SIGUSR1).
  virtual std::shared_ptr<LogSink> logSink(const std::string& destination) = 0;
  // Runs `job` off the event loops (CPU-heavy work such as password hashing). The job may
  // complete a filter's asynchronous phase from there. The default runs it at once.
  virtual void runBlocking(std::function<void()> job) { job(); }
  // Outgoing HTTP calls (JWKS, discovery, introspection...). Callbacks run on the client's
  // thread. Without a client (some tests), calls fail at once.
  virtual void fetch(client::HttpRequest, std::function<void(client::HttpResponse)> done) {
    client::HttpResponse r;
    r.error = "no HTTP client";
    done(std::move(r));
  }
  // A process-wide object shared by every snapshot under `key` (made on first use): state that
  // must survive reloads, such as fetched key sets.
  virtual std::shared_ptr<void> shared(const std::string&,
                                       const std::function<std::shared_ptr<void>()>& make) {
    return make();
  }
};

}  // namespace portico::api
