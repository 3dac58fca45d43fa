#include "filters/access_log/access_log_filter.h"

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
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  out += buf;
}

void appendMs(std::string& out, api::Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", std::chrono::duration<double, std::milli>(d).count());
  out += buf;
}

void appendField(std::string& out, const std::string& f, const api::RequestContext& c) {
  if (f == "time") {
    appendTime(out, c.wall_start);
  } else if (f == "request_id") {
    appendJsonString(out, c.request_id);
  } else if (f == "client") {
    appendJsonString(out, c.client_ip);
  } else if (f == "method") {
    appendJsonString(out, c.original_method);
  } else if (f == "path") {
    appendJsonString(out, c.original_path);
  } else if (f == "route") {
    appendJsonString(out, c.route_name);
  } else if (f == "upstream") {
    appendJsonString(out, c.upstream_name);
  } else if (f == "upstream_target") {
    appendJsonString(out, c.upstream_target);
  } else if (f == "status") {
    out += std::to_string(c.status);
  } else if (f == "bytes_in") {
    out += std::to_string(c.bytes_received);
  } else if (f == "bytes_out") {
    out += std::to_string(c.bytes_sent);
  } else if (f == "upstream_latency_ms") {
    appendMs(out, c.upstream_latency);
  } else if (f == "latency_ms") {
    appendMs(out, c.total_latency);
  } else if (f == "attempts") {
    out += std::to_string(c.upstream_attempts);
  } else if (f == "error") {
    appendJsonString(out, c.error);
  } else if (f == "protocol") {
    appendJsonString(out, c.protocol);
  } else if (f == "consumer") {
    appendJsonString(out, c.consumer ? std::string_view(c.consumer->name) : std::string_view());
  } else if (f == "trace_id") {
    if (c.trace.sampled) {
      char id[33];
      std::snprintf(id, sizeof id, "%016llx%016llx",
                    static_cast<unsigned long long>(c.trace.trace_hi),
                    static_cast<unsigned long long>(c.trace.trace_lo));
      appendJsonString(out, id);
    } else {
      out += "null";
    }
  }
}

class AccessLogFilter final : public api::Filter {
 public:
  AccessLogFilter(const AccessLogConfig& c, api::LogSink& sink) : c_(c), sink_(sink) {}
  void onLog(const api::RequestContext& ctx) noexcept override {
    const bool error = ctx.status >= 400 || ctx.status == 0 || !ctx.error.empty();
    if (c_.errors_only && !error) return;
    // Sampling keeps every error: they are the lines one looks for.
    if (!error && c_.sample < 1.0 && !sampled(ctx)) return;
    try {
      sink_.write(formatAccessLogLine(ctx, c_.fields));
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
  api::LogSink& sink_;
};

class AccessLogFactory final : public api::FilterFactory {
 public:
  AccessLogFactory(AccessLogConfig c, std::shared_ptr<api::LogSink> sink)
      : c_(std::move(c)), sink_(std::move(sink)) {}
  std::unique_ptr<api::Filter> create() const override {
    return std::make_unique<AccessLogFilter>(c_, *sink_);
  }

 private:
  AccessLogConfig c_;
  std::shared_ptr<api::LogSink> sink_;
};

}  // namespace

std::string formatAccessLogLine(const api::RequestContext& ctx,
                                const std::vector<std::string>& fields) {
  std::string line;
  line.reserve(320);
  line += '{';
  bool first = true;
  for (const auto& f : fields) {
    if (!first) line += ',';
    first = false;
    appendJsonString(line, f);
    line += ':';
    appendField(line, f, ctx);
  }
  line += '}';
  return line;
}

api::FilterType accessLogFilterType() {
  return {"access-log",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            AccessLogConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.string("path", c.path);
            r.stringList("fields", c.fields);
            if (const auto* sample = r.get("sample")) {
              if (!sample->is_number() || sample->get<double>() < 0 || sample->get<double>() > 1)
                b.diag.add(r.childPath("sample"), "must be a number from 0 to 1");
              else
                c.sample = sample->get<double>();
            }
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
              b.diag.add(r.childPath("path"), "must be stdout, stderr or a file path");
              return nullptr;
            }
            auto sink = b.services.logSink(c.path);
            if (!sink) {
              b.diag.add(r.childPath("path"), "cannot open \"" + c.path + "\" for appending");
              return nullptr;
            }
            return std::make_shared<AccessLogFactory>(std::move(c), std::move(sink));
          }};
}

}  // namespace portico::filters
