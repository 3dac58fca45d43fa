#include "server/upstream_report.h"

#include "observability/metrics.h"

namespace portico::server {
namespace {

const char* circuitName(upstream::UpstreamState::Circuit c) {
  switch (c) {
    case upstream::UpstreamState::Circuit::Open:
      return "open";
    case upstream::UpstreamState::Circuit::HalfOpen:
      return "half_open";
    default:
      return "closed";
  }
}

}  // namespace

nlohmann::json upstreamsReport(const snapshot::Snapshot& snapshot) {
  const std::int64_t now = upstream::steadyMs();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& up : snapshot.upstreams) {
    nlohmann::json targets = nlohmann::json::array();
    for (std::size_t i = 0; i < up.targets.size(); ++i) {
      const auto& h = *up.health[i];
      const std::int64_t ejected_ms = std::max<std::int64_t>(0, h.ejectedUntil() - now);
      targets.push_back(
          {{"target", up.targets[i].configured},
           {"address", up.targets[i].address.text},
           {"weight", up.targets[i].weight},
           {"healthy", h.available(now)},
           {"active_check",
            up.cfg->health_check ? (h.activeDown() ? "unhealthy" : "healthy") : "off"},
           {"ejected_for_ms", ejected_ms},
           {"ejections", h.ejections()},
           {"consecutive_failures", h.consecutiveFailures()}});
    }
    const auto& s = *up.state;
    list.push_back({{"name", up.cfg->name},
                    {"targets", targets},
                    {"circuit", up.cfg->circuit_breaker ? circuitName(s.circuit()) : "off"},
                    {"in_flight", s.requests()},
                    {"pending_connects", s.pending()},
                    {"retries_in_flight", s.retries()},
                    {"connections", s.openConnections()},
                    {"overload_rejections", s.rejected()},
                    {"circuit_opened", s.opened()}});
  }
  return {{"upstreams", list}};
}

void appendUpstreamMetrics(const snapshot::Snapshot& snapshot, std::string& out) {
  using observability::escapeLabel;
  using observability::family;
  using observability::line;
  if (const auto& t = snapshot.tracer) {
    family(out, "portico_tracing_spans_exported_total", "counter", "Spans the collector accepted.");
    line(out, "portico_tracing_spans_exported_total", "", double(t->exported()));
    family(out, "portico_tracing_spans_dropped_total", "counter",
           "Spans dropped because the export queue was full.");
    line(out, "portico_tracing_spans_dropped_total", "", double(t->dropped()));
    family(out, "portico_tracing_export_failures_total", "counter",
           "Spans in exports the collector refused or did not answer.");
    line(out, "portico_tracing_export_failures_total", "", double(t->failed()));
  }
  const std::int64_t now = upstream::steadyMs();
  family(out, "portico_upstream_target_healthy", "gauge",
         "1 when the target takes traffic (active and passive checks), else 0.");
  for (const auto& up : snapshot.upstreams)
    for (std::size_t i = 0; i < up.targets.size(); ++i)
      line(out, "portico_upstream_target_healthy",
           "upstream=\"" + escapeLabel(up.cfg->name) + "\",target=\"" +
               escapeLabel(up.targets[i].address.text) + "\"",
           up.health[i]->available(now) ? 1 : 0);
  struct Series {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const upstream::UpstreamState&);
  };
  static const Series kSeries[] = {
      {"portico_upstream_circuit_state", "gauge", "Circuit breaker: 0 closed, 1 open, 2 half-open.",
       [](const upstream::UpstreamState& s) { return double(static_cast<int>(s.circuit())); }},
      {"portico_upstream_circuit_opened_total", "counter", "Times the circuit breaker opened.",
       [](const upstream::UpstreamState& s) { return double(s.opened()); }},
      {"portico_upstream_overload_rejections_total", "counter",
       "Requests answered 503 by the circuit breaker or retry budget.",
       [](const upstream::UpstreamState& s) { return double(s.rejected()); }},
      {"portico_upstream_requests_in_flight", "gauge", "Requests to the upstream in flight.",
       [](const upstream::UpstreamState& s) { return double(s.requests()); }},
      {"portico_upstream_connections", "gauge", "Open connections to the upstream.",
       [](const upstream::UpstreamState& s) { return double(s.openConnections()); }},
  };
  for (const auto& series : kSeries) {
    family(out, series.name, series.type, series.help);
    for (const auto& up : snapshot.upstreams)
      line(out, series.name, "upstream=\"" + escapeLabel(up.cfg->name) + "\"",
           series.value(*up.state));
  }
}

}  // namespace portico::server
