#include "observability/http_log_sink.h"

#include "client/http_client.h"
#include "core/json_escape.h"

namespace portico::observability {

HttpLogSink::HttpLogSink(std::string url, api::LogSinkOptions options, client::HttpClient& http)
    : url_(std::move(url)),
      options_(std::move(options)),
      http_(http),
      rings_(options_.max_buffer_bytes) {}

HttpLogSink::~HttpLogSink() = default;

void HttpLogSink::write(std::string_view line) {
  if (!rings_.push(line)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void HttpLogSink::makeBatchLocked() {
  batch_.assign("[");
  std::size_t pos = 0;
  while (pos < staged_.size()) {
    const std::size_t end = staged_.find('\n', pos);
    const std::string_view line(staged_.data() + pos, end - pos);
    if (pos) batch_ += ',';
    if (options_.json_lines) {
      batch_.append(line);
    } else {
      appendJsonString(batch_, line);
    }
    pos = end + 1;
  }
  batch_ += ']';
  batch_lines_ = staged_lines_;
  staged_.clear();
  staged_lines_ = 0;
  attempts_ = 0;
}

void HttpLogSink::sendLocked() {
  in_flight_ = true;
  ++attempts_;
  last_send_ = Clock::now();
  client::HttpRequest req;
  req.method = "POST";
  req.url = url_;
  req.body = batch_;
  req.timeout = options_.timeout;
  req.max_response_bytes = 64 * 1024;
  req.headers.add("Content-Type", "application/json");
  for (const auto& [name, value] : options_.headers) req.headers.add(name, value);
  http_.fetch(std::move(req), [self = shared_from_this()](client::HttpResponse r) {
    self->finished(r.status >= 200 && r.status < 300);
  });
}

void HttpLogSink::finished(bool ok) {
  std::lock_guard lock(mu_);
  in_flight_ = false;
  if (ok) {
    sent_.fetch_add(1, std::memory_order_relaxed);
    batch_.clear();
    batch_lines_ = 0;
  } else if (attempts_ >= 3) {
    dropped_.fetch_add(batch_lines_, std::memory_order_relaxed);
    batch_.clear();
    batch_lines_ = 0;
  } else {
    retry_at_ = Clock::now() + std::chrono::seconds(attempts_);
  }
  idle_.notify_all();
}

bool HttpLogSink::flush() {
  std::lock_guard lock(mu_);
  if (in_flight_) return false;  // lines wait in the rings meanwhile (bounded)
  const auto now = Clock::now();
  if (batch_lines_) {  // a failed batch, waiting for its retry
    if (now < retry_at_) return false;
    sendLocked();
    return true;
  }
  if (staged_lines_ < options_.batch_size)
    staged_lines_ += rings_.drain(staged_, options_.batch_size - staged_lines_);
  if (staged_lines_ == 0) return false;
  if (staged_lines_ < options_.batch_size && now - last_send_ < options_.flush_interval)
    return false;
  makeBatchLocked();
  sendLocked();
  return true;
}

void HttpLogSink::flushFinal(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  std::unique_lock lock(mu_);
  for (;;) {
    idle_.wait_until(lock, deadline, [this] { return !in_flight_; });
    if (in_flight_ || batch_lines_) break;  // still sending, or failing: give up
    if (staged_lines_ < options_.batch_size)
      staged_lines_ += rings_.drain(staged_, options_.batch_size - staged_lines_);
    if (staged_lines_ == 0) break;
    makeBatchLocked();
    sendLocked();
  }
}

}  // namespace portico::observability
