#include "filters/access_log/access_log_filter.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>

#include <chrono>
#include <ctime>

#include "api/services.h"
#include "config/reader.h"
#include "core/json_escape.h"

namespace portico::filters {

const std::vector<std::string> kAccessLogFields = {
    "time",       "request_id",      "client", "method",   "path",      "route",
    "upstream",   "upstream_target", "status", "bytes_in", "bytes_out", "upstream_latency_ms",
    "latency_ms", "attempts",        "error",  "protocol", "consumer",  "trace_id"};

namespace {

// How a value is written: as a JSON value, or as text in a template line (strings bare, with
// control characters, quotes and backslashes as \xHH so a line cannot be forged; empty as -).
enum class Style { Json, Text };

// The line being formatted: a buffer sized before each piece is written, so the writers below
// copy bytes without a capacity check per byte (and without std::string's per-append cost). It
// only grows; one per thread.
class LineBuffer {
 public:
  void clear() { used_ = 0; }
  // Room for `n` more bytes; commit(end) keeps what was written up to `end`.
  char* room(std::size_t n) {
    if (used_ + n > buf_.size()) buf_.resize(std::max(buf_.size() * 2, used_ + n + 512));
    return buf_.data() + used_;
  }
  void commit(char* end) { used_ = static_cast<std::size_t>(end - buf_.data()); }
  void put(std::string_view v) {
    std::memcpy(room(v.size()), v.data(), v.size());
    used_ += v.size();
  }
  std::string_view view() const { return {buf_.data(), used_}; }

 private:
  std::string buf_;
  std::size_t used_ = 0;
};

// Text style: bare, with control characters, quotes and backslashes as \xHH; empty as "-".
char* writeText(char* out, std::string_view v) {
  if (v.empty()) {
    *out++ = '-';
    return out;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  while (!v.empty()) {
    // findJsonEscape also stops at bytes >= 0x80, which text lines keep as they are.
    const std::size_t run = findJsonEscape(v);
    std::memcpy(out, v.data(), run);
    out += run;
    if (run == v.size()) break;
    const auto c = static_cast<unsigned char>(v[run]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      const char escaped[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      std::memcpy(out, escaped, 4);
      out += 4;
    } else {
      *out++ = static_cast<char>(c);
    }
    v.remove_prefix(run + 1);
  }
  return out;
}

void putString(LineBuffer& line, std::string_view v, Style style) {
  if (style == Style::Json) {
    line.commit(writeJsonString(line.room(jsonStringBound(v.size())), v));
  } else {
    line.commit(writeText(line.room(4 * v.size() + 1), v));
  }
}

void putNumber(LineBuffer& line, std::uint64_t v) {
  char* p = line.room(24);
  line.commit(std::to_chars(p, p + 24, v).ptr);
}

void putTime(LineBuffer& line, std::chrono::system_clock::time_point t, Style style) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const int ms =
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count());
  // The date and time change once a second: formatted once per second and thread.
  thread_local std::time_t cached_second = -1;
  thread_local char cached[96];  // ample: snprintf cannot prove the fields are 2 digits
  thread_local std::size_t cached_size = 0;
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  if (tt != cached_second) {
    std::tm tm{};
    gmtime_r(&tt, &tm);
    cached_size = static_cast<std::size_t>(
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
    cached_second = tt;
  }
  char* p = line.room(cached_size + 6);
  if (style == Style::Json) *p++ = '"';
  std::memcpy(p, cached, cached_size);
  p += cached_size;
  *p++ = static_cast<char>('0' + ms / 100);
  *p++ = static_cast<char>('0' + ms / 10 % 10);
  *p++ = static_cast<char>('0' + ms % 10);
  *p++ = 'Z';
  if (style == Style::Json) *p++ = '"';
  line.commit(p);
}

void putMs(LineBuffer& line, api::Clock::duration d) {
  // Milliseconds with three decimals, without printf.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  const auto whole = static_cast<std::uint64_t>(us < 0 ? 0 : us);
  char* p = line.room(32);
  p = std::to_chars(p, p + 24, whole / 1000).ptr;
  const auto frac = static_cast<int>(whole % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  line.commit(p);
}

void putField(LineBuffer& line, std::size_t field, const api::RequestContext& c, Style style) {
  // `field` indexes kAccessLogFields.
  switch (field) {
    case 0:  // time
      putTime(line, c.wall_start, style);
      break;
    case 1:  // request_id
      putString(line, c.request_id, style);
      break;
    case 2:  // client
      putString(line, c.client_ip, style);
      break;
    case 3:  // method
      putString(line, c.original_method, style);
      break;
    case 4:  // path
      putString(line, c.original_path, style);
      break;
    case 5:  // route
      putString(line, c.route_name, style);
      break;
    case 6:  // upstream
      putString(line, c.upstream_name, style);
      break;
    case 7:  // upstream_target
      putString(line, c.upstream_target, style);
      break;
    case 8:  // status
      putNumber(line, static_cast<std::uint64_t>(c.status < 0 ? 0 : c.status));
      break;
    case 9:  // bytes_in
      putNumber(line, c.bytes_received);
      break;
    case 10:  // bytes_out
      putNumber(line, c.bytes_sent);
      break;
    case 11:  // upstream_latency_ms
      putMs(line, c.upstream_latency);
      break;
    case 12:  // latency_ms
      putMs(line, c.total_latency);
      break;
    case 13:  // attempts
      putNumber(line, static_cast<std::uint64_t>(c.upstream_attempts));
      break;
    case 14:  // error
      putString(line, c.error, style);
      break;
    case 15:  // protocol
      putString(line, c.protocol, style);
      break;
    case 16:  // consumer
      putString(line, c.consumer ? std::string_view(c.consumer->name) : std::string_view(), style);
      break;
    case 17:  // trace_id
      if (c.trace.sampled) {
        char id[33];
        std::snprintf(id, sizeof id, "%016llx%016llx",
                      static_cast<unsigned long long>(c.trace.trace_hi),
                      static_cast<unsigned long long>(c.trace.trace_lo));
        putString(line, std::string_view(id, 32), style);
      } else {
        line.put(style == Style::Json ? "null" : "-");
      }
      break;
    default:
      line.put(style == Style::Json ? "null" : "-");
  }
}

std::size_t fieldId(std::string_view name) {
  auto it = std::find(kAccessLogFields.begin(), kAccessLogFields.end(), name);
  return static_cast<std::size_t>(it - kAccessLogFields.begin());
}

// A line format compiled once: literal text, each followed by a field (an index into
// kAccessLogFields, or none). JSON: the literals are `{"name":`, `,"name":` and the closing `}`.
struct CompiledFormat {
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  struct Segment {
    std::string literal;
    std::size_t field = kNone;
  };
  std::vector<Segment> segments;
  Style style = Style::Json;
};

CompiledFormat compileFields(const std::vector<std::string>& fields) {
  CompiledFormat c;
  for (const auto& f : fields) {
    std::string prefix = c.segments.empty() ? "{" : ",";
    appendJsonString(prefix, f);
    prefix += ':';
    c.segments.push_back({std::move(prefix), fieldId(f)});
  }
  c.segments.push_back({c.segments.empty() ? "{}" : "}", CompiledFormat::kNone});
  return c;
}

}  // namespace

Result<CompiledTemplate> parseAccessLogTemplate(std::string_view text) {
  CompiledTemplate out;
  std::string literal;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != '$') {
      literal += text[i++];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {  // $$ is a dollar sign
      literal += '$';
      i += 2;
      continue;
    }
    // A name runs to the first character that is not a letter, digit or underscore. (No
    // ${name}: the config reader substitutes environment variables written that way.)
    const std::size_t start = i + 1;
    std::size_t end = start;
    while (end < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
      ++end;
    const std::string_view name = text.substr(start, end - start);
    if (fieldId(name) == kAccessLogFields.size())
      return makeError("unknown field \"$" + std::string(name) + "\" at offset " +
                       std::to_string(i) +
                       " (known: time, request_id, client, method, path, "
                       "route, upstream, upstream_target, status, bytes_in, bytes_out, "
                       "upstream_latency_ms, latency_ms, attempts, error, protocol, consumer, "
                       "trace_id)");
    out.parts.push_back({std::move(literal), std::string(name)});
    literal.clear();
    i = end;
  }
  if (!literal.empty()) out.parts.push_back({std::move(literal), ""});
  return out;
}

namespace {

CompiledFormat compileTemplate(const CompiledTemplate& t) {
  CompiledFormat c;
  c.style = Style::Text;
  for (const auto& p : t.parts)
    c.segments.push_back({p.literal, p.field.empty() ? CompiledFormat::kNone : fieldId(p.field)});
  return c;
}

void formatInto(LineBuffer& line, const api::RequestContext& ctx, const CompiledFormat& format) {
  line.clear();
  for (const auto& segment : format.segments) {
    line.put(segment.literal);
    if (segment.field != CompiledFormat::kNone) putField(line, segment.field, ctx, format.style);
  }
}

std::string formatLine(const api::RequestContext& ctx, const CompiledFormat& format) {
  LineBuffer line;
  formatInto(line, ctx, format);
  return std::string(line.view());
}

class AccessLogFilter final : public api::Filter {
 public:
  AccessLogFilter(const AccessLogConfig& c, const CompiledFormat& compiled, api::LogSink& sink)
      : c_(c), compiled_(compiled), sink_(sink) {}
  void onLog(const api::RequestContext& ctx) noexcept override {
    const bool error = ctx.status >= 400 || ctx.status == 0 || !ctx.error.empty();
    if (c_.errors_only && !error) return;
    // Sampling keeps every error: they are the lines one looks for.
    if (!error && c_.sample < 1.0 && !sampled(ctx)) return;
    try {
      // Formatted in a per-thread buffer that keeps its capacity: no allocation per line.
      thread_local LineBuffer line;
      formatInto(line, ctx, compiled_);
      sink_.write(line.view());
    } catch (...) {  // allocation failure: losing one line beats losing the worker
    }
  }

 private:
  // Decided by the request id (random): no shared state, and the same request is logged or
  // not by every access-log filter with the same ratio.
  bool sampled(const api::RequestContext& ctx) const {
    const std::uint64_t h = std::hash<std::string>{}(ctx.request_id);
    return static_cast<double>(h >> 11) * 0x1.0p-53 < c_.sample;
  }

  const AccessLogConfig& c_;
  const CompiledFormat& compiled_;
  api::LogSink& sink_;
};

class AccessLogFactory final : public api::FilterFactory {
 public:
  AccessLogFactory(AccessLogConfig c, std::shared_ptr<api::LogSink> sink)
      : c_(std::move(c)),
        compiled_(c_.line_template ? compileTemplate(*c_.line_template) : compileFields(c_.fields)),
        sink_(std::move(sink)) {}
  std::unique_ptr<api::Filter> create() const override {
    return std::make_unique<AccessLogFilter>(c_, compiled_, *sink_);
  }

 private:
  AccessLogConfig c_;
  CompiledFormat compiled_;
  std::shared_ptr<api::LogSink> sink_;
};

}  // namespace

std::string formatAccessLogLine(const api::RequestContext& ctx,
                                const std::vector<std::string>& fields) {
  return formatLine(ctx, compileFields(fields));
}

std::string formatAccessLogLine(const api::RequestContext& ctx, const CompiledTemplate& t) {
  return formatLine(ctx, compileTemplate(t));
}

api::FilterType accessLogFilterType() {
  return {
      "access-log", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        AccessLogConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        r.string("path", c.path);
        r.stringList("fields", c.fields);
        std::string line_template;
        const bool has_template = r.has("template");
        r.string("template", line_template);
        r.ratio("sample", c.sample);
        r.boolean("errors_only", c.errors_only);
        api::LogSinkOptions sink_options;
        const bool http = c.path.rfind("http://", 0) == 0 || c.path.rfind("https://", 0) == 0;
        if (const auto* h = r.get("http")) {
          config::ObjectReader hr(*h, r.childPath("http"), b.diag);
          hr.number("batch_size", 1, 100000, sink_options.batch_size);
          hr.duration("flush_interval", sink_options.flush_interval);
          hr.duration("timeout", sink_options.timeout);
          hr.size("max_buffer", sink_options.max_buffer_bytes);
          if (const auto* hs = hr.get("headers")) {
            if (!hs->is_object()) b.diag.add(hr.childPath("headers"), "must be a map of strings");
            for (auto it = hs->begin(); hs->is_object() && it != hs->end(); ++it) {
              if (it.value().is_string())
                sink_options.headers.emplace_back(it.key(), it.value().get<std::string>());
              else
                b.diag.add(config::joinPath(hr.childPath("headers"), it.key()), "must be a string");
            }
          }
          hr.finish();
          if (!http) b.diag.add(r.childPath("http"), "only for an http:// or https:// path");
        }
        r.finish();
        for (size_t i = 0; i < c.fields.size(); ++i) {
          bool known = false;
          for (const auto& k : kAccessLogFields) known |= k == c.fields[i];
          if (!known)
            b.diag.add(config::indexPath(r.childPath("fields"), i),
                       "unknown field \"" + c.fields[i] + "\"");
        }
        if (has_template) {
          if (!c.fields.empty())
            b.diag.add(r.childPath("template"), "use either fields (JSON lines) or a template");
          auto compiled = parseAccessLogTemplate(line_template);
          if (!compiled) {
            b.diag.add(r.childPath("template"), compiled.error().message);
            return nullptr;
          }
          c.line_template = std::move(*compiled);
          sink_options.json_lines = false;
        }
        if (c.fields.empty()) c.fields = kAccessLogFields;
        if (c.path.empty()) {
          b.diag.add(r.childPath("path"),
                     "must be stdout, stderr, a file path, syslog:udp:HOST:PORT, "
                     "syslog:unix:PATH or an http(s):// URL");
          return nullptr;
        }
        auto sink = b.services.logSink(c.path, sink_options);
        if (!sink) {
          b.diag.add(r.childPath("path"),
                     "cannot open \"" + c.path + "\" (a file for appending, or a syslog socket)");
          return nullptr;
        }
        return std::make_shared<AccessLogFactory>(std::move(c), std::move(sink));
      }};
}

}  // namespace portico::filters
