// An upstream's section of the config (`upstreams[]`): targets, balancing, timeouts, retries,
// health checks, outlier detection, circuit breaking, TLS to it.
#include "config/parse_helpers.h"

namespace portico::config {

using nlohmann::json;

void parseUpstream(const json& j, const std::string& path, Diagnostics& d, UpstreamConfig& u) {
  u.path = path;
  ObjectReader r(j, path, d);
  r.string("name", u.name, true);
  forEachItem(r, "targets", [&](const json& t, const std::string& tp) {
    TargetConfig target;
    if (t.is_string()) {
      target.address = t.get<std::string>();
    } else {
      ObjectReader tr(t, tp, d);
      tr.string("address", target.address, true);
      tr.number("weight", 1, 10000, target.weight);
      tr.finish();
    }
    auto colon = target.address.rfind(':');
    if (!target.address.empty() &&
        (colon == std::string::npos || colon == 0 || colon + 1 == target.address.size()))
      d.add(tp, "address must be host:port, got \"" + target.address + "\"");
    u.targets.push_back(std::move(target));
  });
  if (!r.has("targets")) r.require("targets");
  r.choice("balance",
           {{"round_robin", Balance::RoundRobin},
            {"least_request", Balance::LeastRequest},
            {"consistent_hash", Balance::ConsistentHash},
            {"random", Balance::Random}},
           u.balance);
  if (const json* h = r.get("hash")) {
    ObjectReader hr(*h, r.childPath("hash"), d);
    using On = HashConfig::On;
    hr.require("on");
    hr.choice(
        "on",
        {{"header", On::Header}, {"cookie", On::Cookie}, {"ip", On::ClientIp}, {"path", On::Path}},
        u.hash.on, "hash key");
    hr.string("name", u.hash.name);
    hr.choice("algorithm",
              {{"ring", HashConfig::Algorithm::Ring}, {"maglev", HashConfig::Algorithm::Maglev}},
              u.hash.algorithm);
    hr.finish();
    if ((u.hash.on == On::Header || u.hash.on == On::Cookie) && u.hash.name.empty())
      d.add(hr.childPath("name"), std::string("is required when hashing on ") +
                                      (u.hash.on == On::Header ? "header" : "cookie"));
    if (u.balance != Balance::ConsistentHash)
      d.add(hr.path(), "only applies to balance: consistent_hash");
  }
  if (const json* t = r.get("timeouts")) {
    ObjectReader tr(*t, r.childPath("timeouts"), d);
    tr.duration("connect", u.timeouts.connect);
    tr.duration("read", u.timeouts.read);
    tr.duration("total", u.timeouts.total);
    tr.finish();
    if (u.timeouts.connect.count() <= 0) d.add(tr.childPath("connect"), "must be above 0");
    if (u.timeouts.read.count() <= 0) d.add(tr.childPath("read"), "must be above 0");
  }
  if (const json* rt = r.get("retries")) {
    ObjectReader rr(*rt, r.childPath("retries"), d);
    rr.number("attempts", 1, 10, u.retries.attempts);
    if (const json* s = rr.get("on_statuses")) {
      std::string sp = rr.childPath("on_statuses");
      if (!s->is_array()) d.add(sp, "expected a list of status codes");
      for (size_t i = 0; s->is_array() && i < s->size(); ++i) {
        std::int64_t code = 0;
        if (readInt((*s)[i], indexPath(sp, i), d, 500, 599, code))
          u.retries.on_statuses.push_back(static_cast<int>(code));
      }
    }
    rr.duration("backoff_base", u.retries.backoff_base);
    rr.duration("backoff_max", u.retries.backoff_max);
    rr.finish();
  }
  if (const json* t = r.get("tls")) u.tls = parseClientTls(*t, r.childPath("tls"), d);
  r.choice("protocol",
           {{"http1", UpstreamProtocol::Http1},
            {"h2", UpstreamProtocol::H2},
            {"h2c", UpstreamProtocol::H2c}},
           u.protocol);
  if (u.protocol == UpstreamProtocol::H2 && !u.tls)
    d.add(r.childPath("protocol"), "h2 needs a tls block (h2c is HTTP/2 in clear)");
  if (u.protocol == UpstreamProtocol::H2c && u.tls)
    d.add(r.childPath("protocol"), "h2c is HTTP/2 in clear: use h2 with tls");
  if (u.tls) u.tls->alpn_h2 = u.protocol == UpstreamProtocol::H2;
  if (const json* h = r.get("health_check")) {
    HealthCheckConfig hc;
    ObjectReader hr(*h, r.childPath("health_check"), d);
    hr.string("path", hc.path);
    hr.string("host", hc.host);
    hr.duration("interval", hc.interval);
    hr.duration("timeout", hc.timeout);
    hr.number("healthy_threshold", 1, 1000, hc.healthy_threshold);
    hr.number("unhealthy_threshold", 1, 1000, hc.unhealthy_threshold);
    if (const json* s = hr.get("expected_statuses")) {
      const std::string sp = hr.childPath("expected_statuses");
      if (!s->is_array()) d.add(sp, "must be a list of status codes");
      for (size_t i = 0; s->is_array() && i < s->size(); ++i) {
        std::int64_t code = 0;
        if (readInt((*s)[i], indexPath(sp, i), d, 100, 599, code))
          hc.expected_statuses.push_back(static_cast<int>(code));
      }
    }
    hr.finish();
    if (hc.path.empty() || hc.path[0] != '/') d.add(hr.childPath("path"), "must start with /");
    if (hc.interval.count() <= 0) d.add(hr.childPath("interval"), "must be positive");
    if (hc.timeout.count() <= 0) d.add(hr.childPath("timeout"), "must be positive");
    u.health_check = std::move(hc);
  }
  if (const json* o = r.get("outlier_detection")) {
    OutlierConfig oc;
    ObjectReader orr(*o, r.childPath("outlier_detection"), d);
    orr.number("consecutive_failures", 1, 100000, oc.consecutive_failures);
    orr.duration("base_ejection", oc.base_ejection);
    orr.duration("max_ejection", oc.max_ejection);
    orr.finish();
    if (oc.base_ejection.count() <= 0) d.add(orr.childPath("base_ejection"), "must be positive");
    if (oc.max_ejection < oc.base_ejection)
      d.add(orr.childPath("max_ejection"), "must be at least base_ejection");
    u.outlier_detection = oc;
  }
  if (const json* c = r.get("circuit_breaker")) {
    CircuitBreakerConfig cb;
    ObjectReader cr(*c, r.childPath("circuit_breaker"), d);
    cr.number("max_connections", 0, 10000000, cb.max_connections);
    cr.number("max_pending", 0, 10000000, cb.max_pending);
    cr.number("max_requests", 0, 10000000, cb.max_requests);
    cr.number("max_retries", 0, 10000000, cb.max_retries);
    cr.number("failure_threshold", 0, 100000, cb.failure_threshold);
    cr.duration("open_duration", cb.open_duration);
    cr.number("half_open_requests", 1, 100000, cb.half_open_requests);
    cr.finish();
    if (cb.open_duration.count() <= 0) d.add(cr.childPath("open_duration"), "must be positive");
    u.circuit_breaker = cb;
  }
  if (const json* b = r.get("retry_budget")) {
    RetryBudgetConfig rb;
    ObjectReader br(*b, r.childPath("retry_budget"), d);
    std::int64_t percent = 20;
    br.integer("percent", 0, 100, percent);
    rb.percent = static_cast<double>(percent);
    br.number("min_concurrent", 0, 100000, rb.min_concurrent);
    br.finish();
    u.retry_budget = rb;
  }
  if (const json* sc = r.get("scaling")) {
    ScalingConfig cfg;
    ObjectReader sr(*sc, r.childPath("scaling"), d);
    sr.number("target_in_flight", 0, 1000000, cfg.target_in_flight);
    sr.number("target_rps", 0, 100000000, cfg.target_rps);
    sr.number("min_replicas", 0, 100000, cfg.min_replicas);
    sr.number("max_replicas", 1, 100000, cfg.max_replicas);
    sr.duration("interval", cfg.interval);
    sr.duration("cooldown", cfg.cooldown);
    sr.number("tolerance_percent", 0, 100, cfg.tolerance_percent);
    sr.string("webhook", cfg.webhook);
    sr.duration("webhook_timeout", cfg.webhook_timeout);
    sr.number("webhook_retries", 0, 20, cfg.webhook_retries);
    sr.finish();
    if (cfg.target_in_flight == 0 && cfg.target_rps == 0)
      d.add(sr.path(), "give target_in_flight or target_rps (per replica)");
    if (cfg.max_replicas < cfg.min_replicas)
      d.add(sr.childPath("max_replicas"), "must be at least min_replicas");
    if (cfg.interval.count() < 200) d.add(sr.childPath("interval"), "must be at least 200ms");
    if (!cfg.webhook.empty() && cfg.webhook.rfind("http://", 0) != 0 &&
        cfg.webhook.rfind("https://", 0) != 0)
      d.add(sr.childPath("webhook"), "must be an http:// or https:// URL");
    u.scaling = std::move(cfg);
  }
  if (const json* p = r.get("pool")) {
    ObjectReader pr(*p, r.childPath("pool"), d);
    pr.number("max_idle", 0, 100000, u.pool.max_idle);
    pr.duration("idle_timeout", u.pool.idle_timeout);
    pr.finish();
  }
  readLabels(r, u.labels);
  r.finish();
}

}  // namespace portico::config
