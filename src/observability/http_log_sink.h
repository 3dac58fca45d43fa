#pragma once
// Log lines POSTed to an HTTP collector in batches: a JSON array of up to `batch_size` lines,
// at least every `flush_interval`, one request in flight at a time. Workers only push to their
// bounded ring (line_rings.h, no lock); the log writer's thread stages lines and builds the
// batch, the HTTP client's thread sends it. A failed batch is retried twice (1 s, 2 s later),
// then dropped and counted, as are lines that find a ring full.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "api/services.h"
#include "client/http_client.h"
#include "observability/line_rings.h"
#include "observability/log_sink.h"

namespace portico::observability {

class HttpLogSink final : public FlushableSink, public std::enable_shared_from_this<HttpLogSink> {
 public:
  HttpLogSink(std::string url, api::LogSinkOptions options, client::HttpClient& http);
  ~HttpLogSink() override;

  void write(std::string_view line) override;
  bool flush() override;
  void flushFinal(std::chrono::milliseconds wait) override;
  std::uint64_t dropped() const override { return dropped_.load(std::memory_order_relaxed); }
  std::uint64_t sentBatches() const { return sent_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;
  // Under mu_: moves staged lines into the batch, as a JSON array.
  void makeBatchLocked();
  void sendLocked();
  void finished(bool ok);

  std::string url_;
  api::LogSinkOptions options_;
  client::HttpClient& http_;
  LineRings rings_;
  std::mutex mu_;  // the writer thread, HTTP callbacks and shutdown; never a worker
  std::condition_variable idle_;
  std::string staged_;  // lines drained from the rings, each ending in '\n'
  std::size_t staged_lines_ = 0;
  std::string batch_;  // the batch being sent or waiting for its retry
  std::size_t batch_lines_ = 0;
  int attempts_ = 0;
  bool in_flight_ = false;
  Clock::time_point last_send_ = Clock::now();
  Clock::time_point retry_at_{};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> sent_{0};
};

}  // namespace portico::observability
