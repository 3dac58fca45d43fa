#pragma once
// A request's part in a distributed trace (W3C Trace Context), as the pipeline and filters see
// it: ids, whether it is sampled, and the child spans recorded while it runs.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace portico::api {

struct SpanAttribute {
  std::string key;
  std::string text;  // when !is_number
  std::int64_t number = 0;
  bool is_number = false;
};

struct Span {
  std::uint64_t id = 0;
  std::uint64_t parent = 0;  // 0: the root of this trace in Portico
  std::string name;
  int kind = 1;               // OTLP SpanKind: 1 internal, 2 server, 3 client
  std::int64_t start_ns = 0;  // unix time
  std::int64_t end_ns = 0;
  bool error = false;
  std::vector<SpanAttribute> attributes;

  void attr(std::string key, std::string value) {
    attributes.push_back({std::move(key), std::move(value), 0, false});
  }
  void attr(std::string key, std::int64_t value) {
    attributes.push_back({std::move(key), {}, value, true});
  }
};

// Unix time in nanoseconds, for span times.
inline std::int64_t unixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct TraceContext {
  std::uint64_t trace_hi = 0, trace_lo = 0;
  std::uint64_t parent = 0;    // the caller's span (from its traceparent), 0 when none
  std::uint64_t span = 0;      // this request's server span
  bool sampled = false;        // spans are recorded and exported
  std::vector<Span> children;  // upstream attempts, filter call-outs

  void reset() {
    trace_hi = trace_lo = parent = span = 0;
    sampled = false;
    children.clear();
  }
};

}  // namespace portico::api
