#include "server/health_checker.h"

#include <algorithm>
#include <mutex>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>

#include "api/services.h"
#include "client/http_client.h"

namespace portico::server {

namespace {

struct Probe {
  std::string upstream;
  std::string target;  // address text, for logs
  std::string url;
  std::string host;
  std::string ca_file;
  std::string tls_name;
  bool tls_verify = true;
  std::string client_cert, client_key;
  config::HealthCheckConfig cfg;
  std::shared_ptr<upstream::TargetHealth> health;
  std::chrono::steady_clock::time_point next_due{};
  bool in_flight = false;
};

bool expected(const config::HealthCheckConfig& cfg, int status) {
  if (status <= 0) return false;
  if (cfg.expected_statuses.empty()) return status >= 200 && status < 400;
  return std::find(cfg.expected_statuses.begin(), cfg.expected_statuses.end(), status) !=
         cfg.expected_statuses.end();
}

}  // namespace

struct HealthChecker::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, api::Services& s) : timer(io), services(s) {}

  boost::asio::steady_timer timer;
  api::Services& services;
  std::mutex mu;  // probes: the control thread schedules, the client thread records
  std::vector<std::shared_ptr<Probe>> probes;
  bool stopped = false;

  void tick() {
    const auto now = services.time().steady();
    std::vector<std::shared_ptr<Probe>> due;
    {
      std::lock_guard lock(mu);
      for (auto& p : probes)
        if (!p->in_flight && p->next_due <= now) {
          p->in_flight = true;
          due.push_back(p);
        }
    }
    for (auto& p : due) send(p);
    timer.expires_after(std::chrono::milliseconds(50));
    timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self && !self->stopped) self->tick();
    });
  }

  void send(const std::shared_ptr<Probe>& p) {
    client::HttpRequest req;
    req.url = p->url;
    req.timeout = p->cfg.timeout;
    req.max_response_bytes = 64 * 1024;
    req.ca_file = p->ca_file;
    req.tls_name = p->tls_name;
    req.tls_verify = p->tls_verify;
    req.client_cert = p->client_cert;
    req.client_key = p->client_key;
    if (!p->host.empty()) req.headers.add("Host", p->host);
    services.fetch(std::move(req), [self = shared_from_this(), p](client::HttpResponse r) {
      config::HealthCheckConfig cfg;
      {
        std::lock_guard lock(self->mu);  // update() may change it meanwhile
        cfg = p->cfg;
      }
      const bool ok = expected(cfg, r.status);
      if (p->health->probeResult(ok, cfg)) {
        if (p->health->activeDown()) {
          spdlog::warn("upstream {} target {} is unhealthy ({}): no more traffic", p->upstream,
                       p->target, r.status ? "status " + std::to_string(r.status) : r.error);
        } else {
          spdlog::info("upstream {} target {} is healthy again", p->upstream, p->target);
        }
      }
      std::lock_guard lock(self->mu);
      p->in_flight = false;
      p->next_due = self->services.time().steady() + cfg.interval;
    });
  }
};

HealthChecker::HealthChecker(boost::asio::io_context& io, api::Services& services)
    : impl_(std::make_shared<Impl>(io, services)) {
  impl_->tick();
}

HealthChecker::~HealthChecker() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

void HealthChecker::update(const snapshot::Snapshot& snapshot) {
  std::vector<std::shared_ptr<Probe>> next;
  std::lock_guard lock(impl_->mu);
  for (const auto& up : snapshot.upstreams) {
    if (!up.cfg->health_check) continue;
    const auto& cfg = *up.cfg->health_check;
    for (std::size_t i = 0; i < up.targets.size(); ++i) {
      const auto& t = up.targets[i];
      const std::string url =
          std::string(up.tls ? "https://" : "http://") + t.address.text + cfg.path;
      // A target probed before keeps its probe: its schedule and the one in flight.
      std::shared_ptr<Probe> p;
      for (const auto& old : impl_->probes)
        if (old->health == up.health[i] && old->url == url) p = old;
      if (!p) p = std::make_shared<Probe>();
      p->upstream = up.cfg->name;
      p->target = t.address.text;
      p->url = url;
      p->host = cfg.host.empty() ? t.configured : cfg.host;
      p->ca_file = up.cfg->tls ? up.cfg->tls->ca : std::string();
      // The probe connects to the address, but checks the certificate as traffic does: for
      // the configured server_name, else the target's host name.
      p->tls_name = !up.cfg->tls                       ? std::string()
                    : up.cfg->tls->server_name.empty() ? t.host
                                                       : up.cfg->tls->server_name;
      p->tls_verify = !up.cfg->tls || up.cfg->tls->verify;
      if (up.cfg->tls) {
        p->client_cert = up.cfg->tls->client_cert;
        p->client_key = up.cfg->tls->client_key;
      }
      p->cfg = cfg;
      p->health = up.health[i];
      next.push_back(std::move(p));
    }
  }
  impl_->probes = std::move(next);
}

}  // namespace portico::server
