#include "observability/tracing.h"

#include <charconv>

#include <nlohmann/json.hpp>

#include "client/http_client.h"
#include "core/json_escape.h"

namespace portico::observability {
namespace {

bool hex64(std::string_view s, std::uint64_t& out) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;  // lower case only
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

void appendHex64(std::string& out, std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 15];
}

std::string hex64(std::uint64_t v) {
  std::string s;
  appendHex64(s, v);
  return s;
}

}  // namespace

bool parseTraceparent(std::string_view v, api::TraceContext& out) {
  // version "-" trace-id "-" parent-id "-" flags; later versions may append fields.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  if (v.substr(0, 2) == "ff") return false;
  if (v.substr(0, 2) == "00" && v.size() != 55) return false;
  std::uint64_t hi = 0, lo = 0, parent = 0, flags = 0;
  if (!hex64(v.substr(3, 16), hi) || !hex64(v.substr(19, 16), lo) ||
      !hex64(v.substr(36, 16), parent))
    return false;
  auto f = v.substr(53, 2);
  auto [p, ec] = std::from_chars(f.data(), f.data() + 2, flags, 16);
  if (ec != std::errc() || p != f.data() + 2) return false;
  if ((hi == 0 && lo == 0) || parent == 0) return false;
  out.trace_hi = hi;
  out.trace_lo = lo;
  out.parent = parent;
  out.sampled = flags & 1;
  return true;
}

std::string formatTraceparent(const api::TraceContext& t, std::uint64_t span, bool sampled) {
  std::string s = "00-";
  appendHex64(s, t.trace_hi);
  appendHex64(s, t.trace_lo);
  s += '-';
  appendHex64(s, span);
  s += sampled ? "-01" : "-00";
  return s;
}

std::string otlpJson(const std::vector<FinishedTrace>& traces, const std::string& service_name) {
  // Written directly (no JSON document built): this runs for every export batch.
  std::string out;
  std::size_t spans = 0;
  for (const auto& t : traces) spans += t.spans.size();
  out.reserve(256 + spans * 512);
  out +=
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":)";
  appendJsonString(out, service_name);
  out += R"(}}]},"scopeSpans":[{"scope":{"name":"portico"},"spans":[)";
  bool first = true;
  for (const auto& t : traces) {
    const std::string trace_id = hex64(t.trace_hi) + hex64(t.trace_lo);
    for (const auto& s : t.spans) {
      out += first ? "{" : ",{";
      first = false;
      out += R"("traceId":")";
      out += trace_id;
      out += R"(","spanId":")";
      appendHex64(out, s.id);
      out += '"';
      if (s.parent) {
        out += R"(,"parentSpanId":")";
        appendHex64(out, s.parent);
        out += '"';
      }
      out += R"(,"name":)";
      appendJsonString(out, s.name);
      out += R"(,"kind":)";
      out += std::to_string(s.kind);
      out += R"(,"startTimeUnixNano":")";
      out += std::to_string(s.start_ns);
      out += R"(","endTimeUnixNano":")";
      out += std::to_string(s.end_ns);
      out += R"(","attributes":[)";
      for (std::size_t i = 0; i < s.attributes.size(); ++i) {
        const auto& a = s.attributes[i];
        out += i ? R"(,{"key":)" : R"({"key":)";
        appendJsonString(out, a.key);
        if (a.is_number) {
          out += R"(,"value":{"intValue":")";
          out += std::to_string(a.number);
          out += R"("}})";
        } else {
          out += R"(,"value":{"stringValue":)";
          appendJsonString(out, a.text);
          out += "}}";
        }
      }
      out += R"(],"status":{"code":)";
      out += s.error ? '2' : '0';
      out += "}}";
    }
  }
  out += "]}]}]}";
  return out;
}

Tracer::Tracer(config::TracingConfig cfg, api::Services& services)
    : cfg_(std::move(cfg)), services_(services), thread_([this] { run(); }) {}

Tracer::~Tracer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Tracer::submit(FinishedTrace trace) {
  bool full_batch = false;
  {
    std::lock_guard lock(mu_);
    if (queued_spans_ + trace.spans.size() > cfg_.queue_size) {
      counts_->dropped.fetch_add(trace.spans.size(), std::memory_order_relaxed);
      return;
    }
    queued_spans_ += trace.spans.size();
    queue_.push_back(std::move(trace));
    full_batch = queued_spans_ >= cfg_.batch_size;
  }
  if (full_batch) wake_.notify_one();
}

void Tracer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, cfg_.flush_interval,
                   [&] { return stop_ || queued_spans_ >= cfg_.batch_size; });
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    std::vector<FinishedTrace> batch;
    std::size_t spans = 0;
    while (!queue_.empty() && spans < cfg_.batch_size) {
      spans += queue_.front().spans.size();
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_spans_ -= spans;
    lock.unlock();
    client::HttpRequest req;
    req.method = "POST";
    req.url = cfg_.endpoint;
    req.headers.add("Content-Type", "application/json");
    req.body = otlpJson(batch, cfg_.service_name);
    req.timeout = std::chrono::milliseconds(5000);
    services_.fetch(std::move(req), [counts = counts_, spans](client::HttpResponse r) {
      auto& n = r.status >= 200 && r.status < 300 ? counts->exported : counts->failed;
      n.fetch_add(spans, std::memory_order_relaxed);
    });
    lock.lock();
    if (stop_ && queue_.empty()) return;
  }
}

}  // namespace portico::observability
