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
#include "core/keyed_hash.h"

namespace portico::filters {

const std::vector<std::string> kAccessLogFields = {
    "time",       "request_id",      "client", "method",   "path",      "route",
    "upstream",   "upstream_target", "status", "bytes_in", "bytes_out", "upstream_latency_ms",
    "latency_ms", "attempts",        "error",  "protocol", "consumer",  "trace_id"};

namespace {

// How a value is written: as a JSON value, or as text in a template line (strings bare, with
// control characters, quotes and backslashes as \xHH so a line cannot be forged; empty as -).
enum class Style { Json, Text };

// The line being formatted: one per thread, only ever grown. Room is made once per piece (its
// worst case), then the piece is written through a plain pointer: no check per byte.
class LineBuffer {
 public:
  char* start() { return buf_.data(); }
  // Room for `n` more bytes after `p`; returns `p`, moved if the buffer had to grow.
  char* ensure(char* p, std::size_t n) {
    const auto used = static_cast<std::size_t>(p - buf_.data());
    if (used + n > buf_.size()) {
      buf_.resize(std::max(buf_.size() * 2, used + n + 512));
      p = buf_.data() + used;
    }
    return p;
  }
  void end(const char* p) { used_ = static_cast<std::size_t>(p - buf_.data()); }
  std::string_view view() const { return {buf_.data(), used_}; }

 private:
  std::string buf_ = std::string(1024, '\0');
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

char* writeTime(char* p, std::chrono::system_clock::time_point t, Style style) {
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
    cached_size = std::min<std::size_t>(
        40, static_cast<std::size_t>(std::snprintf(
                cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)));
    cached_second = tt;
  }
  if (style == Style::Json) *p++ = '"';
  std::memcpy(p, cached, cached_size);
  p += cached_size;
  *p++ = static_cast<char>('0' + ms / 100);
  *p++ = static_cast<char>('0' + ms / 10 % 10);
  *p++ = static_cast<char>('0' + ms % 10);
  *p++ = 'Z';
  if (style == Style::Json) *p++ = '"';
  return p;
}

char* writeMs(char* p, api::Clock::duration d) {
  // Milliseconds with three decimals, without printf.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  const auto whole = static_cast<std::uint64_t>(us < 0 ? 0 : us);
  p = std::to_chars(p, p + 24, whole / 1000).ptr;
  const auto frac = static_cast<int>(whole % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  return p;
}

char* writeNumber(char* p, std::uint64_t v) {
  return std::to_chars(p, p + 24, v).ptr;
}

// The string a field shows, for the string fields (`is_string` false for the others).
inline std::string_view stringField(std::size_t field, const api::RequestContext& c,
                                    bool& is_string) {
  is_string = true;
  switch (field) {
    case 1:
      return c.request_id;
    case 2:
      return c.client_ip;
    case 3:
      return c.original_method;
    case 4:
      return c.original_path;
    case 5:
      return c.route_name;
    case 6:
      return c.upstream_name;
    case 7:
      return c.upstream_target;
    case 14:
      return c.error;
    case 15:
      return c.protocol;
    case 16:
      return c.consumer ? std::string_view(c.consumer->name) : std::string_view();
    default:
      is_string = false;
      return {};
  }
}

// Writes a field (an index into kAccessLogFields) at `p`, which has room for 64 bytes; a
// string makes room for itself.
char* writeField(LineBuffer& line, char* p, std::size_t field, const api::RequestContext& c,
                 Style style) {
  bool is_string = false;
  const std::string_view v = stringField(field, c, is_string);
  if (is_string) {
    p = line.ensure(p, jsonStringBound(v.size()));
    return style == Style::Json ? writeJsonString(p, v) : writeText(p, v);
  }
  const auto none = [&] {
    const std::string_view text = style == Style::Json ? "null" : "-";
    std::memcpy(p, text.data(), text.size());
    return p + text.size();
  };
  switch (field) {
    case 0:
      return writeTime(p, c.wall_start, style);
    case 8:
      return writeNumber(p, static_cast<std::uint64_t>(c.status < 0 ? 0 : c.status));
    case 9:
      return writeNumber(p, c.bytes_received);
    case 10:
      return writeNumber(p, c.bytes_sent);
    case 11:
      return writeMs(p, c.upstream_latency);
    case 12:
      return writeMs(p, c.total_latency);
    case 13:
      return writeNumber(p, static_cast<std::uint64_t>(c.upstream_attempts));
    case 17: {  // trace_id
      if (!c.trace.sampled) return none();
      char id[33];
      std::snprintf(id, sizeof id, "%016llx%016llx",
                    static_cast<unsigned long long>(c.trace.trace_hi),
                    static_cast<unsigned long long>(c.trace.trace_lo));
      return style == Style::Json ? writeJsonString(p, std::string_view(id, 32))
                                  : writeText(p, std::string_view(id, 32));
    }
    default:
      return none();
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
    Segment(std::string text, std::size_t f)
        : size(text.size()), padded(std::move(text) + std::string(16, '\0')), field(f) {}
    std::size_t size;
    std::string padded;  // the literal and 16 NULs: copied in whole 16-byte blocks
    std::size_t field;
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
  char* p = line.start();
  for (const auto& segment : format.segments) {
    // The literal (padded: copied in whole 16-byte blocks), then room for a non-string field.
    p = line.ensure(p, segment.padded.size() + 64);
    for (std::size_t i = 0; i < segment.size; i += 16)
      std::memcpy(p + i, segment.padded.data() + i, 16);
    p += segment.size;
    if (segment.field != CompiledFormat::kNone)
      p = writeField(line, p, segment.field, ctx, format.style);
  }
  line.end(p);
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
  // Decided by the request id: no shared state, and the same request is logged or not by
  // every access-log filter with the same ratio. A client may send its own X-Request-Id, so
  // the hash is keyed (a secret of this process): no id can be picked to stay out of the log.
  bool sampled(const api::RequestContext& ctx) const {
    const std::uint64_t h = KeyedHash{}(ctx.request_id);
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
        sink_(std::move(sink)),
        shared_(std::make_unique<AccessLogFilter>(c_, compiled_, *sink_)) {}
  // Keeps no per-request state: one instance serves every request (thread-safe: the line is
  // formatted in a per-thread buffer, the sink takes lines from any thread).
  api::FilterPtr create() const override { return api::borrowFilter(*shared_); }

 private:
  AccessLogConfig c_;
  CompiledFormat compiled_;
  std::shared_ptr<api::LogSink> sink_;
  std::unique_ptr<AccessLogFilter> shared_;
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
      "access-log",
      [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
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
      },
      true};
}

}  // namespace portico::filters
