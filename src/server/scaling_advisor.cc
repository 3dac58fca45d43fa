#include "server/scaling_advisor.h"

#include <cmath>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "api/services.h"
#include "client/http_client.h"

namespace portico::server {
namespace {

using Clock = std::chrono::steady_clock;
using Buckets = std::array<std::uint64_t, observability::Histogram::kBounds.size() + 1>;

struct Totals {
  std::uint64_t attempts = 0, failures = 0, server_errors = 0;
  Buckets buckets{};
};

// The q-quantile from bucket counts: linear within the bucket that holds it.
double quantile(const Buckets& b, double q) {
  std::uint64_t total = 0;
  for (auto c : b) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double cumulative = 0, lower = 0;
  const auto& bounds = observability::Histogram::kBounds;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const double upper = i < bounds.size() ? bounds[i] : bounds.back();
    if (cumulative + static_cast<double>(b[i]) >= rank && b[i] > 0)
      return lower + (upper - lower) * (rank - cumulative) / static_cast<double>(b[i]);
    cumulative += static_cast<double>(b[i]);
    lower = upper;
  }
  return bounds.back();
}

struct UpstreamScaling {
  // Sampling within the current interval.
  double in_flight_sum = 0;
  int samples = 0;
  Clock::time_point window_start{};
  Totals last;
  bool have_last = false;
  // The last evaluation.
  ScalingAdvisor::Figures figures;
  std::uint32_t recommended = 0;  // 0 until first evaluated
  std::uint32_t current = 0;
  std::uint32_t candidate = 0;  // what the last evaluations wanted, and how many in a row
  int candidate_runs = 0;
  Clock::time_point changed_at{};
  std::uint64_t events_sent = 0, events_failed = 0;
};

}  // namespace

std::uint32_t ScalingAdvisor::desired(const config::ScalingConfig& cfg, const Figures& f) {
  double want = 0;
  if (cfg.target_in_flight) want = std::max(want, f.in_flight / cfg.target_in_flight);
  if (cfg.target_rps) want = std::max(want, f.rps / cfg.target_rps);
  auto n = static_cast<std::uint32_t>(std::ceil(want - 1e-9));
  return std::clamp(n, cfg.min_replicas, cfg.max_replicas);
}

struct ScalingAdvisor::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, api::Services& s,
       const std::vector<std::unique_ptr<observability::WorkerStats>>& st, SnapshotSource src)
      : timer(io), services(s), stats(st), snapshot(std::move(src)) {}

  boost::asio::steady_timer timer;
  api::Services& services;
  const std::vector<std::unique_ptr<observability::WorkerStats>>& stats;
  SnapshotSource snapshot;
  mutable std::mutex mu;  // state: the control thread writes, the admin handler reads
  std::map<std::string, UpstreamScaling> state;
  bool stopped = false;

  Totals totals(const std::string& name) const {
    Totals t;
    for (const auto& w : stats) {
      w->forEachUpstream([&](const std::string& n, const observability::UpstreamStats& s) {
        if (n != name) return;
        t.attempts += s.attempts.get();
        t.failures += s.failures.get();
        t.server_errors += s.server_errors.get();
        auto b = s.duration.buckets();
        for (std::size_t i = 0; i < b.size(); ++i) t.buckets[i] += b[i];
      });
    }
    return t;
  }

  void arm() {
    timer.expires_after(std::chrono::milliseconds(100));
    timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self && !self->stopped) self->tick();
    });
  }

  void tick() {
    auto snap = snapshot();
    const auto now = Clock::now();
    if (snap) {
      std::lock_guard lock(mu);
      for (const auto& up : snap->upstreams) {
        if (!up.cfg->scaling) continue;
        auto& s = state[up.cfg->name];
        s.current = static_cast<std::uint32_t>(up.targets.size());
        if (s.window_start == Clock::time_point{}) {
          s.window_start = now;
          s.last = totals(up.cfg->name);
          s.have_last = true;
        }
        s.in_flight_sum += static_cast<double>(up.state->requests());
        ++s.samples;
        if (now - s.window_start >= up.cfg->scaling->interval) evaluate(up, s, now);
      }
    }
    arm();
  }

  void evaluate(const snapshot::Upstream& up, UpstreamScaling& s, Clock::time_point now) {
    const auto& cfg = *up.cfg->scaling;
    const double seconds = std::chrono::duration<double>(now - s.window_start).count();
    Totals t = totals(up.cfg->name);
    Figures f;
    f.in_flight = s.samples ? s.in_flight_sum / s.samples : 0;
    const std::uint64_t attempts = t.attempts - s.last.attempts;
    f.rps = seconds > 0 ? static_cast<double>(attempts) / seconds : 0;
    const std::uint64_t errors =
        (t.failures - s.last.failures) + (t.server_errors - s.last.server_errors);
    f.error_ratio = attempts ? static_cast<double>(errors) / static_cast<double>(attempts) : 0;
    Buckets delta{};
    for (std::size_t i = 0; i < delta.size(); ++i) delta[i] = t.buckets[i] - s.last.buckets[i];
    f.p50 = quantile(delta, 0.5);
    f.p95 = quantile(delta, 0.95);
    f.p99 = quantile(delta, 0.99);
    s.figures = f;
    s.last = t;
    s.window_start = now;
    s.in_flight_sum = 0;
    s.samples = 0;

    const std::uint32_t before = s.recommended ? s.recommended : s.current;
    if (!s.recommended) s.recommended = before;
    const std::uint32_t want = desired(cfg, f);
    // Hysteresis: a change within the tolerance band is no change; cool-down: at most one
    // change per `cooldown`.
    const double ratio = before ? static_cast<double>(want) / before : 2.0;
    if (want == before || std::abs(ratio - 1.0) * 100.0 <= cfg.tolerance_percent) {
      s.candidate_runs = 0;
      return;
    }
    // Two evaluations in a row must want the same count (a ramp caught mid-interval does not
    // count), and changes are at least `cooldown` apart.
    s.candidate_runs = want == s.candidate ? s.candidate_runs + 1 : 1;
    s.candidate = want;
    if (s.candidate_runs < 2) return;
    if (s.changed_at != Clock::time_point{} && now - s.changed_at < cfg.cooldown) return;
    s.candidate_runs = 0;
    s.recommended = want;
    s.changed_at = now;
    spdlog::info("upstream {}: recommended replicas {} -> {} (in flight {:.1f}, {:.0f} req/s)",
                 up.cfg->name, before, want, f.in_flight, f.rps);
    if (!cfg.webhook.empty()) notify(up.cfg->name, cfg, s, before);
  }

  void notify(const std::string& name, const config::ScalingConfig& cfg, const UpstreamScaling& s,
              std::uint32_t previous) {
    nlohmann::json event = {
        {"type", "portico.scaling.recommendation"},
        {"upstream", name},
        {"current_targets", s.current},
        {"previous_recommended", previous},
        {"recommended", s.recommended},
        {"figures",
         {{"in_flight_avg", s.figures.in_flight},
          {"throughput_rps", s.figures.rps},
          {"error_ratio", s.figures.error_ratio},
          {"latency_seconds",
           {{"p50", s.figures.p50}, {"p95", s.figures.p95}, {"p99", s.figures.p99}}},
          {"interval_seconds", std::chrono::duration<double>(cfg.interval).count()}}},
        {"policy",
         {{"target_in_flight", cfg.target_in_flight},
          {"target_rps", cfg.target_rps},
          {"min_replicas", cfg.min_replicas},
          {"max_replicas", cfg.max_replicas}}},
        {"time", std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count()}};
    send(name, cfg, event.dump(), 0);
  }

  void send(const std::string& name, const config::ScalingConfig& cfg, std::string body,
            std::uint32_t attempt) {
    client::HttpRequest req;
    req.method = "POST";
    req.url = cfg.webhook;
    req.headers.add("Content-Type", "application/json");
    req.body = body;
    req.timeout = cfg.webhook_timeout;
    services.fetch(std::move(req), [self = shared_from_this(), name, cfg, body = std::move(body),
                                    attempt](client::HttpResponse r) {
      const bool ok = r.status >= 200 && r.status < 300;
      if (ok || attempt >= cfg.webhook_retries) {
        std::lock_guard lock(self->mu);
        auto& s = self->state[name];
        (ok ? s.events_sent : s.events_failed) += 1;
        if (!ok)
          spdlog::warn("scaling webhook for {} failed after {} attempts: {}", name, attempt + 1,
                       r.status ? "status " + std::to_string(r.status) : r.error);
        return;
      }
      // Retry on the control thread after 250 ms, 500 ms, 1 s...
      auto timer = std::make_shared<boost::asio::steady_timer>(
          self->timer.get_executor(), std::chrono::milliseconds(250 << std::min(attempt, 5u)));
      timer->async_wait([self, timer, name, cfg, body, attempt](boost::system::error_code ec) {
        if (!ec && !self->stopped) self->send(name, cfg, body, attempt + 1);
      });
    });
  }
};

ScalingAdvisor::ScalingAdvisor(
    boost::asio::io_context& io, api::Services& services,
    const std::vector<std::unique_ptr<observability::WorkerStats>>& stats, SnapshotSource snapshot)
    : impl_(std::make_shared<Impl>(io, services, stats, std::move(snapshot))) {
  impl_->arm();
}

ScalingAdvisor::~ScalingAdvisor() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

void ScalingAdvisor::appendMetrics(std::string& out) const {
  using observability::escapeLabel;
  using observability::family;
  using observability::line;
  std::lock_guard lock(impl_->mu);
  if (impl_->state.empty()) return;
  struct Series {
    const char* name;
    const char* help;
    double (*value)(const UpstreamScaling&);
  };
  static const Series kSeries[] = {
      {"portico_upstream_recommended_replicas", "Replicas recommended for the upstream.",
       [](const UpstreamScaling& s) { return double(s.recommended ? s.recommended : s.current); }},
      {"portico_upstream_current_targets", "Targets the upstream has now.",
       [](const UpstreamScaling& s) { return double(s.current); }},
      {"portico_upstream_in_flight_avg", "Requests in flight, averaged over the last interval.",
       [](const UpstreamScaling& s) { return s.figures.in_flight; }},
      {"portico_upstream_throughput_rps", "Attempts per second over the last interval.",
       [](const UpstreamScaling& s) { return s.figures.rps; }},
      {"portico_upstream_error_ratio", "Failed or 5xx attempts / attempts, last interval.",
       [](const UpstreamScaling& s) { return s.figures.error_ratio; }},
      {"portico_upstream_latency_p99_seconds", "Attempt latency p99 over the last interval.",
       [](const UpstreamScaling& s) { return s.figures.p99; }},
      {"portico_upstream_scaling_events_total", "Scaling events delivered to the webhook.",
       [](const UpstreamScaling& s) { return double(s.events_sent); }},
  };
  for (const auto& series : kSeries) {
    family(out, series.name, "gauge", series.help);
    for (const auto& [name, s] : impl_->state)
      line(out, series.name, "upstream=\"" + escapeLabel(name) + "\"", series.value(s));
  }
}

}  // namespace portico::server
