#include "observability/http_log_sink.h"

#include "core/json_escape.h"

namespace portico::observability {

HttpLogSink::HttpLogSink(std::string url, api::LogSinkOptions options, client::HttpClient& http)
    : url_(std::move(url)), options_(std::move(options)), http_(http) {}

HttpLogSink::~HttpLogSink() = default;

void HttpLogSink::write(std::string_view line) {
  std::lock_guard lock(mu_);
  const std::size_t grows = line.size() + 1 + (options_.json_lines ? 0 : line.size() / 4 + 2);
  if (buffer_.size() + batch_.size() + grows > options_.max_buffer_bytes) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (buffered_lines_) buffer_ += ',';
  if (options_.json_lines) {
    buffer_.append(line);
  } else {
    appendJsonString(buffer_, line);
  }
  ++buffered_lines_;
}

bool HttpLogSink::takeBatchLocked(Clock::time_point now, bool force) {
  if (batch_lines_) return now >= retry_at_ || force;  // a failed batch, due for its retry
  if (buffered_lines_ == 0) return false;
  if (!force && buffered_lines_ < options_.batch_size && now - last_send_ < options_.flush_interval)
    return false;
  // Up to batch_size lines: cut the buffer after that many top-level commas.
  std::size_t lines = buffered_lines_;
  std::size_t cut = buffer_.size();
  if (lines > options_.batch_size) {
    // Lines are JSON values: commas between them are the ones outside strings and brackets.
    std::size_t seen = 0;
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < buffer_.size(); ++i) {
      const char c = buffer_[i];
      if (in_string) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        --depth;
      } else if (c == ',' && depth == 0 && ++seen == options_.batch_size) {
        cut = i;
        break;
      }
    }
    lines = options_.batch_size;
  }
  batch_.assign("[");
  batch_.append(buffer_, 0, cut);
  batch_ += ']';
  buffer_.erase(0, cut == buffer_.size() ? cut : cut + 1);
  buffered_lines_ -= lines;
  batch_lines_ = lines;
  attempts_ = 0;
  return true;
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
  if (in_flight_ || !takeBatchLocked(Clock::now(), false)) return false;
  sendLocked();
  return true;
}

void HttpLogSink::flushFinal(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  std::unique_lock lock(mu_);
  while (Clock::now() < deadline) {
    idle_.wait_until(lock, deadline, [this] { return !in_flight_; });
    if (in_flight_ || !takeBatchLocked(Clock::now(), true)) break;
    if (attempts_ >= 1 && batch_lines_ && retry_at_ > Clock::now()) break;  // failing: give up
    sendLocked();
  }
}

}  // namespace portico::observability
