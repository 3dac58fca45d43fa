#pragma once
// Tracing: W3C `traceparent` parsing and formatting, and the exporter that batches finished
// traces on its own thread and POSTs them as OTLP/HTTP JSON. Workers hand traces over with a
// short lock (sampled requests only); a full queue drops them and counts.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/services.h"
#include "api/trace.h"
#include "config/model.h"

namespace portico::observability {

// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>". False when malformed, version ff,
// or an all-zero id: the caller then starts a new trace.
bool parseTraceparent(std::string_view value, api::TraceContext& out);
std::string formatTraceparent(const api::TraceContext& t, std::uint64_t span, bool sampled);

struct FinishedTrace {
  std::uint64_t trace_hi = 0, trace_lo = 0;
  std::vector<api::Span> spans;
};

// OTLP/HTTP JSON (ExportTraceServiceRequest) for `traces`.
std::string otlpJson(const std::vector<FinishedTrace>& traces, const std::string& service_name);

class Tracer {
 public:
  Tracer(config::TracingConfig cfg, api::Services& services);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  const config::TracingConfig& config() const { return cfg_; }
  void submit(FinishedTrace trace);
  std::uint64_t dropped() const { return counts_->dropped.load(std::memory_order_relaxed); }
  std::uint64_t exported() const { return counts_->exported.load(std::memory_order_relaxed); }
  std::uint64_t failed() const { return counts_->failed.load(std::memory_order_relaxed); }

 private:
  void run();

  const config::TracingConfig cfg_;
  api::Services& services_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<FinishedTrace> queue_;
  std::size_t queued_spans_ = 0;
  bool stop_ = false;
  struct Counts {
    std::atomic<std::uint64_t> dropped{0}, exported{0}, failed{0};
  };
  // Shared with export callbacks, which may finish after the tracer is gone.
  std::shared_ptr<Counts> counts_ = std::make_shared<Counts>();
  std::thread thread_;
};

}  // namespace portico::observability
