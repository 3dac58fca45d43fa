#include "filters/access_log/access_log_filter.h"

#include <algorithm>
#include <cstdio>
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

void appendTime(std::string& out, std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const int ms =
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count());
  // The date and time change once a second: formatted once per second and thread.
  thread_local std::time_t cached_second = -1;
  thread_local char cached[96];  // ample: snprintf cannot prove the fields are 2 digits
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  if (tt != cached_second) {
    std::tm tm{};
    gmtime_r(&tt, &tm);
    std::snprintf(cached, sizeof cached, "\"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = tt;
  }
  out += cached;
  const char tail[5] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                        static_cast<char>('0' + ms % 10), 'Z', '"'};
  out.append(tail, 5);
}

void appendMs(std::string& out, api::Clock::duration d) {
  // Milliseconds with three decimals, without printf.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  out += std::to_string(us / 1000);
  const auto frac = static_cast<int>(us % 1000);
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                          static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out.append(digits, 4);
}

void appendField(std::string& out, std::size_t field, const api::RequestContext& c) {
  // `field` indexes kAccessLogFields.
  switch (field) {
    case 0:  // time
      appendTime(out, c.wall_start);
      break;
    case 1:  // request_id
      appendJsonString(out, c.request_id);
      break;
    case 2:  // client
      appendJsonString(out, c.client_ip);
      break;
    case 3:  // method
      appendJsonString(out, c.original_method);
      break;
    case 4:  // path
      appendJsonString(out, c.original_path);
      break;
    case 5:  // route
      appendJsonString(out, c.route_name);
      break;
    case 6:  // upstream
      appendJsonString(out, c.upstream_name);
      break;
    case 7:  // upstream_target
      appendJsonString(out, c.upstream_target);
      break;
    case 8:  // status
      out += std::to_string(c.status);
      break;
    case 9:  // bytes_in
      out += std::to_string(c.bytes_received);
      break;
    case 10:  // bytes_out
      out += std::to_string(c.bytes_sent);
      break;
    case 11:  // upstream_latency_ms
      appendMs(out, c.upstream_latency);
      break;
    case 12:  // latency_ms
      appendMs(out, c.total_latency);
      break;
    case 13:  // attempts
      out += std::to_string(c.upstream_attempts);
      break;
    case 14:  // error
      appendJsonString(out, c.error);
      break;
    case 15:  // protocol
      appendJsonString(out, c.protocol);
      break;
    case 16:  // consumer
      appendJsonString(out, c.consumer ? std::string_view(c.consumer->name) : std::string_view());
      break;
    case 17:  // trace_id
      if (c.trace.sampled) {
        char id[33];
        std::snprintf(id, sizeof id, "%016llx%016llx",
                      static_cast<unsigned long long>(c.trace.trace_hi),
                      static_cast<unsigned long long>(c.trace.trace_lo));
        appendJsonString(out, id);
      } else {
        out += "null";
      }
      break;
    default:
      out += "null";
  }
}

// The fast form of a field list: indexes into kAccessLogFields and each field's `,"name":`.
struct CompiledFields {
  std::vector<std::size_t> ids;
  std::vector<std::string> prefixes;
};

CompiledFields compile(const std::vector<std::string>& fields) {
  CompiledFields c;
  for (const auto& f : fields) {
    auto it = std::find(kAccessLogFields.begin(), kAccessLogFields.end(), f);
    c.ids.push_back(static_cast<std::size_t>(it - kAccessLogFields.begin()));
    std::string prefix = c.prefixes.empty() ? "" : ",";
    appendJsonString(prefix, f);
    prefix += ':';
    c.prefixes.push_back(std::move(prefix));
  }
  return c;
}

std::string formatLine(const api::RequestContext& ctx, const CompiledFields& fields) {
  std::string line;
  line.reserve(384);
  line += '{';
  for (std::size_t i = 0; i < fields.ids.size(); ++i) {
    line += fields.prefixes[i];
    appendField(line, fields.ids[i], ctx);
  }
  line += '}';
  return line;
}

class AccessLogFilter final : public api::Filter {
 public:
  AccessLogFilter(const AccessLogConfig& c, const CompiledFields& compiled, api::LogSink& sink)
      : c_(c), compiled_(compiled), sink_(sink) {}
  void onLog(const api::RequestContext& ctx) noexcept override {
    const bool error = ctx.status >= 400 || ctx.status == 0 || !ctx.error.empty();
    if (c_.errors_only && !error) return;
    // Sampling keeps every error: they are the lines one looks for.
    if (!error && c_.sample < 1.0 && !sampled(ctx)) return;
    try {
      sink_.write(formatLine(ctx, compiled_));
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
  const CompiledFields& compiled_;
  api::LogSink& sink_;
};

class AccessLogFactory final : public api::FilterFactory {
 public:
  AccessLogFactory(AccessLogConfig c, std::shared_ptr<api::LogSink> sink)
      : c_(std::move(c)), compiled_(compile(c_.fields)), sink_(std::move(sink)) {}
  std::unique_ptr<api::Filter> create() const override {
    return std::make_unique<AccessLogFilter>(c_, compiled_, *sink_);
  }

 private:
  AccessLogConfig c_;
  CompiledFields compiled_;
  std::shared_ptr<api::LogSink> sink_;
};

}  // namespace

std::string formatAccessLogLine(const api::RequestContext& ctx,
                                const std::vector<std::string>& fields) {
  return formatLine(ctx, compile(fields));
}

api::FilterType accessLogFilterType() {
  return {
      "access-log", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        AccessLogConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        r.string("path", c.path);
        r.stringList("fields", c.fields);
        r.ratio("sample", c.sample);
        r.boolean("errors_only", c.errors_only);
        r.finish();
        for (size_t i = 0; i < c.fields.size(); ++i) {
          bool known = false;
          for (const auto& k : kAccessLogFields) known |= k == c.fields[i];
          if (!known)
            b.diag.add(config::indexPath(r.childPath("fields"), i),
                       "unknown field \"" + c.fields[i] + "\"");
        }
        if (c.fields.empty()) c.fields = kAccessLogFields;
        if (c.path.empty()) {
          b.diag.add(
              r.childPath("path"),
              "must be stdout, stderr, a file path, syslog:udp:HOST:PORT or syslog:unix:PATH");
          return nullptr;
        }
        auto sink = b.services.logSink(c.path);
        if (!sink) {
          b.diag.add(r.childPath("path"),
                     "cannot open \"" + c.path + "\" (a file for appending, or a syslog socket)");
          return nullptr;
        }
        return std::make_shared<AccessLogFactory>(std::move(c), std::move(sink));
      }};
}

}  // namespace portico::filters
