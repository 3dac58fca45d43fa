#include "server/stats_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "server/upstream_report.h"

namespace portico::server {
namespace {

using observability::Series;
using observability::SeriesPoint;

constexpr std::size_t kTopConsumers = 10;
constexpr std::size_t kErrorsShown = 50;

nlohmann::json number(float v) {
  if (std::isnan(v)) return nullptr;
  return std::round(static_cast<double>(v) * 1000.0) / 1000.0;
}

// How much of a route's history /api/stats carries for its sparkline (a minute); the whole of
// it comes from /api/stats/routes/NAME, for the route being charted. Keeps /api/stats small
// with a thousand routes.
constexpr std::size_t kSparklinePoints = 30;

// A series as one array per field (what chart code wants), and its latest point. `rates_only`:
// only the last kSparklinePoints of the rate.
void addSeries(nlohmann::json& out, const Series* series, bool rates_only = false) {
  static const SeriesPoint kEmpty{};
  const SeriesPoint& last = series && !series->empty() ? series->back() : kEmpty;
  out["per_second"] = number(last.per_second);
  out["error_ratio"] = number(last.error_ratio);
  out["client_error_ratio"] = number(last.client_error_ratio);
  out["p50_ms"] = number(last.p50_ms);
  out["p95_ms"] = number(last.p95_ms);
  out["p99_ms"] = number(last.p99_ms);
  nlohmann::json h = {{"per_second", nlohmann::json::array()},
                      {"error_ratio", nlohmann::json::array()},
                      {"client_error_ratio", nlohmann::json::array()},
                      {"p50_ms", nlohmann::json::array()},
                      {"p95_ms", nlohmann::json::array()},
                      {"p99_ms", nlohmann::json::array()}};
  if (series && rates_only) {
    const std::size_t skip =
        series->size() > kSparklinePoints ? series->size() - kSparklinePoints : 0;
    for (auto it = series->begin() + static_cast<std::ptrdiff_t>(skip); it != series->end(); ++it)
      h["per_second"].push_back(number(it->per_second));
    out["history"] = nlohmann::json{{"per_second", std::move(h["per_second"])}};
    return;
  }
  if (series) {
    for (const auto& p : *series) {
      h["per_second"].push_back(number(p.per_second));
      h["error_ratio"].push_back(number(p.error_ratio));
      h["client_error_ratio"].push_back(number(p.client_error_ratio));
      h["p50_ms"].push_back(number(p.p50_ms));
      h["p95_ms"].push_back(number(p.p95_ms));
      h["p99_ms"].push_back(number(p.p99_ms));
    }
  }
  out["history"] = std::move(h);
}

// Counts by status class ("none": answered without a status, for routes).
nlohmann::json statusClasses(const std::array<std::uint64_t, 6>& by_class, bool with_none) {
  nlohmann::json j = {{"1xx", by_class[1]},
                      {"2xx", by_class[2]},
                      {"3xx", by_class[3]},
                      {"4xx", by_class[4]},
                      {"5xx", by_class[5]}};
  if (with_none) j["none"] = by_class[0];
  return j;
}

std::string describeMatch(const config::RouteMatch& m) {
  std::string out;
  for (const auto& method : m.methods) out += (out.empty() ? "" : ",") + method;
  if (!out.empty()) out += ' ';
  for (const auto& host : m.hosts) out += host + " ";
  if (m.path) out += *m.path;
  if (m.path_prefix) out += *m.path_prefix + "*";
  if (m.path_regex) out += "~" + *m.path_regex;
  return out;
}

std::string isoTime(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

}  // namespace

nlohmann::json routeHistory(const snapshot::Snapshot& snapshot,
                            const observability::StatsHistory& history, const std::string& name) {
  for (const auto& r : snapshot.routes) {
    if (r.cfg->name != name) continue;
    nlohmann::json j = {{"name", name}, {"times", history.times()}};
    addSeries(j, history.route(name));
    return j;
  }
  return nullptr;
}

observability::Totals liveTotals(observability::Totals all, const snapshot::Snapshot& snapshot) {
  observability::Totals live;
  for (const auto& r : snapshot.routes) {
    auto it = all.routes.find(r.cfg->name);
    live.routes[r.cfg->name] = it == all.routes.end() ? observability::RouteTotals{} : it->second;
  }
  for (const auto& u : snapshot.upstreams) {
    auto it = all.upstreams.find(u.cfg->name);
    live.upstreams[u.cfg->name] =
        it == all.upstreams.end() ? observability::UpstreamTotals{} : it->second;
  }
  live.consumers = std::move(all.consumers);
  live.listeners = std::move(all.listeners);
  live.connections_active = all.connections_active;
  live.connections_accepted = all.connections_accepted;
  live.requests = all.requests;
  live.bad_requests = all.bad_requests;
  return live;
}

nlohmann::json statsReport(const StatsReportInputs& in) {
  const snapshot::Snapshot& snap = *in.snapshot;
  const auto& totals = *in.totals;
  const auto& history = *in.history;
  nlohmann::json j;
  const auto now = std::chrono::system_clock::now();
  j["time"] = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  j["interval_ms"] = in.interval_ms;
  j["times"] = history.times();

  const double uptime = std::chrono::duration<double>(now - in.process->started).count();
  const auto usage = observability::processUsage();
  j["process"] = {{"version", PORTICO_VERSION},
                  {"workers", in.workers},
                  {"uptime_seconds", std::round(uptime)},
                  {"resident_bytes", observability::residentBytes()},
                  {"cpu_seconds", usage.cpu_seconds},
                  {"open_fds", usage.open_fds},
                  {"connections_active", totals.connections_active},
                  {"connections_accepted", totals.connections_accepted},
                  {"requests", totals.requests},
                  {"bad_requests", totals.bad_requests}};
  j["config"] = {{"version", snap.version},
                 {"hash", snap.hash},
                 {"source", snap.source},
                 {"loaded_at", isoTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           snap.loaded_at.time_since_epoch())
                                           .count())},
                 {"reloads", in.reloads}};

  nlohmann::json overall = {{"name", "all routes"}};
  std::uint64_t requests = 0, errors = 0, in_flight = 0;
  for (const auto& [_, r] : totals.routes) {
    requests += r.answered();
    errors += r.by_class[5] + r.by_class[0];
    in_flight += r.inFlight();
  }
  overall["requests"] = requests;
  overall["errors"] = errors;
  overall["in_flight"] = in_flight;
  addSeries(overall, &history.overall());
  j["overall"] = std::move(overall);

  nlohmann::json routes = nlohmann::json::array();
  for (const auto& r : snap.routes) {
    const auto it = totals.routes.find(r.cfg->name);
    const observability::RouteTotals t =
        it == totals.routes.end() ? observability::RouteTotals{} : it->second;
    nlohmann::json x = {{"name", r.cfg->name},         {"match", describeMatch(r.cfg->match)},
                        {"upstream", r.cfg->upstream}, {"requests", t.answered()},
                        {"in_flight", t.inFlight()},   {"status", statusClasses(t.by_class, true)},
                        {"bytes_in", t.bytes_in},      {"bytes_out", t.bytes_out}};
    addSeries(x, history.route(r.cfg->name), true);
    routes.push_back(std::move(x));
  }
  j["routes"] = std::move(routes);

  nlohmann::json upstreams = upstreamsReport(snap)["upstreams"];
  for (auto& u : upstreams) {
    const std::string name = u["name"];
    const auto it = totals.upstreams.find(name);
    const observability::UpstreamTotals t =
        it == totals.upstreams.end() ? observability::UpstreamTotals{} : it->second;
    u["attempts"] = t.attempts;
    u["status"] = statusClasses(t.by_class, false);
    u["bytes_in"] = t.bytes_in;
    u["bytes_out"] = t.bytes_out;
    u["failures"] = t.failures;
    u["server_errors"] = t.server_errors;
    u["retries"] = t.retries;
    u["ejections"] = t.ejections;
    addSeries(u, history.upstream(name));
  }
  j["upstreams"] = std::move(upstreams);

  nlohmann::json consumers = nlohmann::json::array();
  for (const auto& [name, c] : observability::topConsumers(totals, kTopConsumers)) {
    if (c.requests == 0 && c.rejections == 0) continue;
    consumers.push_back({{"name", name}, {"requests", c.requests}, {"rejections", c.rejections}});
  }
  j["consumers"] = std::move(consumers);

  auto events = in.errors;
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return a.unix_ms > b.unix_ms; });
  if (events.size() > kErrorsShown) events.resize(kErrorsShown);
  nlohmann::json errs = nlohmann::json::array();
  for (const auto& e : events)
    errs.push_back({{"time", isoTime(e.unix_ms)},
                    {"status", e.status},
                    {"method", e.method},
                    {"path", e.path},
                    {"route", e.route},
                    {"request_id", e.request_id},
                    {"error", e.detail}});
  j["errors"] = std::move(errs);
  return j;
}

}  // namespace portico::server
