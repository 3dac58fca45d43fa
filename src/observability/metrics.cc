#include "observability/metrics.h"

#include "observability/stats_totals.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace portico::observability {

void Histogram::observe(std::chrono::nanoseconds d) {
  const double s = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  buckets_[i].add();
  count_.add();
  sum_ns_.add(static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count()));
}

std::array<std::uint64_t, Histogram::kBounds.size() + 1> Histogram::buckets() const {
  std::array<std::uint64_t, kBounds.size() + 1> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].get();
  return out;
}

void RecentErrors::record(std::int64_t unix_ms, int status, std::string_view method,
                          std::string_view path, std::string_view route,
                          std::string_view request_id, std::string_view detail) {
  constexpr std::size_t kMaxPath = 256;
  std::lock_guard lock(mu_);
  ErrorEvent& e = ring_[next_];
  e.unix_ms = unix_ms;
  e.status = status;
  e.method.assign(method);
  e.path.assign(path.substr(0, kMaxPath));
  e.route.assign(route);
  e.request_id.assign(request_id);
  e.detail.assign(detail.substr(0, kMaxPath));
  next_ = (next_ + 1) % kCapacity;
  size_ = std::min(size_ + 1, kCapacity);
}

std::vector<ErrorEvent> RecentErrors::list() const {
  std::lock_guard lock(mu_);
  std::vector<ErrorEvent> out;
  out.reserve(size_);
  for (std::size_t i = 0; i < size_; ++i)
    out.push_back(ring_[(next_ + kCapacity - size_ + i) % kCapacity]);
  return out;
}

RouteStats& WorkerStats::route(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& p = routes_[name];
  if (!p) p = std::make_unique<RouteStats>();
  return *p;
}

ConsumerStats& WorkerStats::consumer(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& p = consumers_[name];
  if (!p) p = std::make_unique<ConsumerStats>();
  return *p;
}

ListenerStats& WorkerStats::listener(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& p = listeners_[name];
  if (!p) p = std::make_unique<ListenerStats>();
  return *p;
}

UpstreamStats& WorkerStats::upstream(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& p = upstreams_[name];
  if (!p) p = std::make_unique<UpstreamStats>();
  return *p;
}

Counter& WorkerStats::filterEvent(std::string_view filter, std::string_view event) {
  std::string key;
  key.reserve(filter.size() + event.size() + 1);
  key.append(filter).append(1, '\n').append(event);
  std::lock_guard lock(mu_);
  auto& p = filter_events_[key];
  if (!p) p = std::make_unique<Counter>();
  return *p;
}

std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void line(std::string& out, const char* name, const std::string& labels, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += buf;
  out += '\n';
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

namespace {

// One histogram family, a series per map entry.
template <class Map, class Member>
void histogramFamily(std::string& out, const char* name, const char* help, const char* label,
                     const Map& series, Member member) {
  family(out, name, "histogram", help);
  const std::string base = name;
  for (const auto& [key, entry] : series) {
    const HistogramTotals& h = entry.*member;
    const std::string l = std::string(label) + "=\"" + escapeLabel(key) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      cumulative += h.buckets[i];
      char le[32];
      std::snprintf(le, sizeof le, "%g", Histogram::kBounds[i]);
      line(out, (base + "_bucket").c_str(), l + ",le=\"" + le + "\"",
           static_cast<double>(cumulative));
    }
    cumulative += h.buckets.back();
    line(out, (base + "_bucket").c_str(), l + ",le=\"+Inf\"", static_cast<double>(cumulative));
    line(out, (base + "_sum").c_str(), l, static_cast<double>(h.sum_ns) / 1e9);
    line(out, (base + "_count").c_str(), l, static_cast<double>(h.count));
  }
}

// A counter family by status class, a series per map entry and class (classes still at zero
// other than 2xx are left out; `first` 1 also leaves out "none").
template <class Map>
void classFamily(std::string& out, const char* name, const char* help, const char* label,
                 const Map& series, std::size_t first) {
  static const char* kClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  family(out, name, "counter", help);
  for (const auto& [key, entry] : series) {
    for (std::size_t i = first; i < entry.by_class.size(); ++i) {
      if (entry.by_class[i] == 0 && i != 2) continue;
      line(out, name,
           std::string(label) + "=\"" + escapeLabel(key) + "\",code=\"" + kClasses[i] + "\"",
           static_cast<double>(entry.by_class[i]));
    }
  }
}

// A metric family with one unlabelled sample.
void scalar(std::string& out, const char* name, const char* type, const char* help, double value) {
  family(out, name, type, help);
  line(out, name, "", value);
}

}  // namespace

double residentBytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

ProcessUsage processUsage() {
  ProcessUsage u;
  std::ifstream f("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::string skip;
    for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt: fields 3-13
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    u.cpu_seconds = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    u.open_fds += 1;
  return u;
}

std::string toOpenMetrics(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t pos = 0;
  std::string pending_help;  // HELP comes before TYPE: held until the type is known
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.rfind("# HELP ", 0) == 0) {
      pending_help = std::string(line);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0 && line.size() > 15 &&
        line.substr(line.size() - 8) == " counter") {
      std::string name(line.substr(7, line.size() - 15));
      if (name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0) {
        const std::string base = name.substr(0, name.size() - 6);
        if (!pending_help.empty())
          out += "# HELP " + base + pending_help.substr(7 + name.size()) + "\n";
        out += "# TYPE " + base + " counter\n";
        pending_help.clear();
        continue;
      }
    }
    if (!pending_help.empty()) {
      out += pending_help;
      out += '\n';
      pending_help.clear();
    }
    out += line;
    out += '\n';
  }
  out += "# EOF\n";
  return out;
}

std::string renderPrometheus(const Totals& t, const ProcessStats& process) {
  std::string out;
  out.reserve(4096);
  classFamily(out, "portico_requests_total", "Requests answered, by route and status class.",
              "route", t.routes, 0);
  histogramFamily(out, "portico_request_duration_seconds",
                  "Request duration, from the head read to the end of the response.", "route",
                  t.routes, &RouteTotals::duration);
  const auto perRoute = [&](const char* name, const char* type, const char* help, auto value) {
    family(out, name, type, help);
    for (const auto& [route, x] : t.routes)
      line(out, name, "route=\"" + escapeLabel(route) + "\"", static_cast<double>(value(x)));
  };
  perRoute("portico_request_bytes_total", "counter", "Request body bytes received, by route.",
           [](const RouteTotals& x) { return x.bytes_in; });
  perRoute("portico_response_bytes_total", "counter", "Response bytes sent, by route.",
           [](const RouteTotals& x) { return x.bytes_out; });
  perRoute("portico_requests_in_flight", "gauge", "Requests being served, by route.",
           [](const RouteTotals& x) { return x.inFlight(); });
  family(out, "portico_auth_refusals_total", "counter",
         "Requests refused by auth and access filters, by route and reason.");
  static const char* kReasons[] = {"", "missing_credentials", "invalid_credentials", "forbidden",
                                   "address_denied"};
  for (const auto& [name, r] : t.routes) {
    const auto& a = r.auth_failures;
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i] == 0) continue;
      line(out, "portico_auth_refusals_total",
           "route=\"" + escapeLabel(name) + "\",reason=\"" + kReasons[i] + "\"",
           static_cast<double>(a[i]));
    }
  }
  scalar(out, "portico_http_requests_total", "counter", "Requests read from clients, all routes.",
         static_cast<double>(t.requests));
  scalar(out, "portico_bad_requests_total", "counter",
         "Requests refused as malformed or over a limit.", static_cast<double>(t.bad_requests));

  histogramFamily(out, "portico_upstream_request_duration_seconds",
                  "Upstream attempt duration until the response head.", "upstream", t.upstreams,
                  &UpstreamTotals::duration);
  const auto perUpstream = [&](const char* name, const char* help,
                               std::uint64_t UpstreamTotals::*field) {
    family(out, name, "counter", help);
    for (const auto& [upstream, u] : t.upstreams)
      line(out, name, "upstream=\"" + escapeLabel(upstream) + "\"", static_cast<double>(u.*field));
  };
  perUpstream("portico_upstream_attempts_total", "Upstream attempts, retries included.",
              &UpstreamTotals::attempts);
  classFamily(out, "portico_upstream_responses_total",
              "Response heads received from the upstream, by status class (retried ones included).",
              "upstream", t.upstreams, 1);
  perUpstream("portico_upstream_request_bytes_total",
              "Request body bytes sent to the upstream (each request's last attempt).",
              &UpstreamTotals::bytes_in);
  perUpstream("portico_upstream_response_bytes_total",
              "Response bytes relayed from the upstream to clients.", &UpstreamTotals::bytes_out);
  perUpstream("portico_upstream_failures_total",
              "Upstream attempts that failed (connect, reset, timeout).",
              &UpstreamTotals::failures);
  perUpstream("portico_upstream_retries_total", "Retries made.", &UpstreamTotals::retries);
  perUpstream("portico_upstream_ejections_total",
              "Targets ejected by outlier detection (passive health checks).",
              &UpstreamTotals::ejections);
  perUpstream("portico_upstream_calls_total",
              "Calls made to the upstream by filters (ext-auth, traffic-mirror...).",
              &UpstreamTotals::calls);
  perUpstream("portico_upstream_mirror_requests_total",
              "Mirrored copies of requests sent to the upstream (traffic-mirror).",
              &UpstreamTotals::mirrored);
  perUpstream("portico_upstream_mirror_dropped_total",
              "Mirrored copies not sent: max_in_flight reached or the body over the limit.",
              &UpstreamTotals::mirror_dropped);

  family(out, "portico_filter_events_total", "counter",
         "Events counted by filters (e.g. a response-transformer body that was not JSON).");
  for (const auto& [key, n] : t.filter_events) {
    const auto nl = key.find('\n');
    line(out, "portico_filter_events_total",
         "filter=\"" + escapeLabel(key.substr(0, nl)) + "\",event=\"" +
             escapeLabel(key.substr(nl + 1)) + "\"",
         static_cast<double>(n));
  }

  if (const std::uint32_t top = process.consumers_top.load(); top > 0) {
    const auto ranked = topConsumers(t, top);
    family(out, "portico_consumer_requests_total", "counter",
           "Requests by consumer: the top N by requests, the rest as \"other\".");
    for (const auto& [name, c] : ranked)
      line(out, "portico_consumer_requests_total", "consumer=\"" + escapeLabel(name) + "\"",
           static_cast<double>(c.requests));
    family(out, "portico_consumer_rejections_total", "counter",
           "Requests of the consumer that Portico refused itself (rate limit, quota, acl...).");
    for (const auto& [name, c] : ranked)
      line(out, "portico_consumer_rejections_total", "consumer=\"" + escapeLabel(name) + "\"",
           static_cast<double>(c.rejections));
  }
  family(out, "portico_listener_connections_accepted_total", "counter",
         "Client connections accepted, by listener.");
  for (const auto& [name, l] : t.listeners)
    line(out, "portico_listener_connections_accepted_total",
         "listener=\"" + escapeLabel(name) + "\"", static_cast<double>(l.accepted));
  family(out, "portico_listener_connections_active", "gauge",
         "Client connections open now, by listener.");
  for (const auto& [name, l] : t.listeners)
    line(out, "portico_listener_connections_active", "listener=\"" + escapeLabel(name) + "\"",
         static_cast<double>(l.active));
  scalar(out, "portico_connections_active", "gauge", "Client connections open now.",
         static_cast<double>(t.connections_active));
  scalar(out, "portico_connections_accepted_total", "counter", "Client connections accepted.",
         static_cast<double>(t.connections_accepted));
  scalar(out, "portico_tls_handshakes_total", "counter", "TLS handshakes completed with clients.",
         static_cast<double>(t.tls_handshakes));
  scalar(out, "portico_tls_handshake_failures_total", "counter",
         "TLS handshakes with clients that failed.", static_cast<double>(t.tls_handshake_failures));
  scalar(out, "portico_tunnels_active", "gauge", "Upgraded (WebSocket) connections open now.",
         static_cast<double>(t.tunnels_active));
  scalar(out, "portico_http2_connections_total", "counter", "Client connections over HTTP/2.",
         static_cast<double>(t.http2_connections));
  scalar(out, "portico_http2_streams_total", "counter", "HTTP/2 requests (streams) started.",
         static_cast<double>(t.http2_streams));
  scalar(out, "portico_http2_protocol_closes_total", "counter",
         "HTTP/2 connections closed with GOAWAY for a protocol error or abuse (rapid reset, "
         "floods, oversized header lists).",
         static_cast<double>(t.http2_protocol_closes));
  scalar(out, "portico_http2_stream_stalls_total", "counter",
         "HTTP/2 streams reset because the client kept its flow-control window shut.",
         static_cast<double>(t.http2_stream_stalls));
  scalar(out, "portico_config_reloads_total", "counter", "Configurations loaded and swapped in.",
         static_cast<double>(process.config_reloads.load()));
  scalar(out, "portico_config_reload_failures_total", "counter", "Configurations refused.",
         static_cast<double>(process.config_reload_failures.load()));
  scalar(out, "portico_config_version", "gauge", "Version number of the active configuration.",
         static_cast<double>(process.config_version.load()));
  scalar(out, "portico_access_log_dropped_total", "counter",
         "Log lines dropped because a sink was full.",
         static_cast<double>(process.log_lines_dropped.load()));
  scalar(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         residentBytes());
  const ProcessUsage usage = processUsage();
  scalar(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent.",
         usage.cpu_seconds);
  scalar(out, "process_open_fds", "gauge", "Open file descriptors.", usage.open_fds);
  const double start = std::chrono::duration<double>(process.started.time_since_epoch()).count();
  scalar(out, "process_start_time_seconds", "gauge", "Start time, seconds since the epoch.", start);
  scalar(out, "portico_uptime_seconds", "gauge", "Seconds since the process started.",
         std::chrono::duration<double>(std::chrono::system_clock::now() - process.started).count());
  return out;
}

}  // namespace portico::observability
