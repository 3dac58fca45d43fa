#pragma once
// Log sinks written by one background thread. Workers append to their own bounded ring per sink
// (no lock, see line_rings.h); the writer thread drains the rings every 50 ms and writes. A full
// ring drops lines (counted), so a slow disk never stalls a worker.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "api/services.h"
#include "client/http_client.h"
#include "core/blocking_pool.h"
#include "observability/line_rings.h"
#include "observability/log_sink.h"

namespace portico::observability {

class LogWriter;

class LogFile final : public FlushableSink {
 public:
  LogFile(std::string destination, int fd, bool owns_fd, std::size_t ring_bytes);
  // Sends each line as a syslog datagram (RFC 5424, facility local0, severity info).
  void useDatagrams(std::string header) {
    datagram_ = true;
    datagram_header_ = std::move(header);
  }
  ~LogFile() override;
  void write(std::string_view line) override;
  // Writes what is buffered; returns false when there was nothing.
  bool flush() override;
  bool reopen() override;

  const std::string& destination() const { return destination_; }
  std::uint64_t dropped() const override { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::string destination_;
  int fd_;
  bool owns_fd_;
  // Syslog: each line is one datagram on a connected socket, after this header.
  bool datagram_ = false;
  std::string datagram_header_;
  LineRings rings_;
  std::mutex flush_mu_;  // the writer thread and a reopen or shutdown may flush at once
  std::string writing_;  // what the flushing thread drained
  std::atomic<std::uint64_t> dropped_{0};
};

class LogWriter final : public api::Services {
 public:
  LogWriter();
  ~LogWriter() override;
  std::shared_ptr<api::LogSink> logSink(const std::string& destination,
                                        const api::LogSinkOptions& options) override;
  void runBlocking(std::function<void()> job) override { blocking_.post(std::move(job)); }
  void fetch(client::HttpRequest request, std::function<void(client::HttpResponse)> done) override {
    http_.fetch(std::move(request), std::move(done));
  }
  // Held weakly: an object lives while a snapshot uses it. A reload builds the new snapshot
  // while the old one still holds what they share, so shared state carries over; what the new
  // config no longer uses goes with the last snapshot (and request) that did.
  std::shared_ptr<void> shared(const std::string& key,
                               const std::function<std::shared_ptr<void>()>& make) override {
    std::lock_guard lock(shared_mu_);
    std::erase_if(shared_, [](const auto& entry) { return entry.second.expired(); });
    auto& slot = shared_[key];
    auto object = slot.lock();
    if (!object) {
      object = make();
      slot = object;
    }
    return object;
  }
  // Reopens every file (after logrotate moved it). Called on SIGUSR1.
  void reopenAll();
  // Writes everything buffered now (used at shutdown and in tests); HTTP sinks get up to 2 s.
  void flushAll();
  std::uint64_t droppedLines() const;

 private:
  void run();

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FlushableSink>> files_;  // by destination (and options)
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  BlockingPool blocking_{2};
  std::mutex shared_mu_;
  std::map<std::string, std::weak_ptr<void>> shared_;
  client::HttpClient http_;  // last: its thread stops first
};

}  // namespace portico::observability
