#include "proxy/worker_context.h"

#include <boost/asio/post.hpp>

#include "auth/consumer_directory.h"
#include "proxy/redis_connection.h"

#include <time.h>

#include <algorithm>
#include <random>

namespace portico::proxy {

namespace {

// A route at the same place with the same name keeps its counters without a lookup (most
// routes, after an Admin API write to one of 10,000).
std::vector<observability::RouteStats*> routeTable(
    observability::WorkerStats& stats, const snapshot::Snapshot& snap,
    const snapshot::Snapshot* before, const std::vector<observability::RouteStats*>& table) {
  std::vector<observability::RouteStats*> routes;
  routes.reserve(snap.routes.size());
  for (std::size_t i = 0; i < snap.routes.size(); ++i) {
    const auto& name = snap.routes[i].cfg->name;
    const bool same = before && i < before->routes.size() && i < table.size() &&
                      before->routes[i].cfg->name == name;
    routes.push_back(same ? table[i] : &stats.route(name));
  }
  return routes;
}

}  // namespace

std::unique_ptr<UpstreamConnection> ConnectionPool::acquire(const std::string& target) {
  auto it = idle_.find(target);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto conn = std::move(it->second.back());
  it->second.pop_back();
  if (buffers_) conn->buffer.unpark(*buffers_);
  return conn;
}

void ConnectionPool::release(std::unique_ptr<UpstreamConnection> conn,
                             const config::PoolConfig& cfg, Clock::time_point now) {
  // find() first: with few targets libstdc++ finds by comparing keys, where operator[] always
  // hashes the key (std::hash<std::string>: ~100 instructions per request).
  auto it = idle_.find(conn->target);
  auto& list = it != idle_.end() ? it->second : idle_[conn->target];
  if (list.size() >= cfg.max_idle || !conn->buffer.empty()) return;  // closes it
  if (buffers_) conn->buffer.park(*buffers_);
  conn->idle_since = now;
  conn->idle_timeout = cfg.idle_timeout;
  list.push_back(std::move(conn));
}

void ConnectionPool::sweep(Clock::time_point now) {
  for (auto& [_, list] : idle_) {
    std::erase_if(list, [&](const std::unique_ptr<UpstreamConnection>& c) {
      return now - c->idle_since >= c->idle_timeout;
    });
  }
  // Targets come and go with URL calls' origins: past a few dozen, those with no idle
  // connection leave the table (a configured upstream's targets stay while they have one).
  if (idle_.size() > kKeepEmptyTargets)
    std::erase_if(idle_, [](const auto& entry) { return entry.second.empty(); });
}

std::size_t ConnectionPool::idleCount() const {
  std::size_t n = 0;
  for (const auto& [_, list] : idle_) n += list.size();
  return n;
}

void WorkerContext::keepTlsSession(const std::string& key, SSL_SESSION* session) {
  auto it = tls_sessions.find(key);
  if (it == tls_sessions.end()) {
    if (tls_sessions.size() >= kMaxTlsSessions) tls_sessions.erase(tls_sessions.begin());
    it = tls_sessions.emplace(key, nullptr).first;
  }
  it->second.reset(session);
}

upstream::LoadBalancer& WorkerContext::balancer(const snapshot::Upstream& up) {
  if (up.balancer) return *up.balancer;
  auto& b = balancers_[up.cfg->name];
  if (b.lb && b.fingerprint != up.fingerprint && b.other && b.other_fingerprint == up.fingerprint) {
    std::swap(b.lb, b.other);
    std::swap(b.fingerprint, b.other_fingerprint);
  }
  if (!b.lb || b.fingerprint != up.fingerprint) {
    // The one going out of the table may still be held by an exchange between attempts.
    std::erase_if(retired_balancers_, [](const auto& lb) { return lb->users == 0; });
    if (b.other && b.other->users > 0) retired_balancers_.push_back(std::move(b.other));
    b.other = std::move(b.lb);
    b.other_fingerprint = std::move(b.fingerprint);
    std::vector<std::uint32_t> weights;
    for (const auto& t : up.targets) weights.push_back(t.weight);
    b.lb = upstream::makeLoadBalancer(up.cfg->balance, weights, up.hash_table,
                                      0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(id + 1));
    b.fingerprint = up.fingerprint;
  }
  return *b.lb;
}

std::uint64_t randomSeed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

WorkerContext::~WorkerContext() {
  stopClients();
}

redis::Client& WorkerContext::redis(const redis::Settings& settings) {
  auto key = settings.key();
  auto it = redis_clients_.find(key);
  if (it == redis_clients_.end())
    it = redis_clients_.emplace(key, makeRedisClient(io, settings, time)).first;
  return *it->second;
}

void WorkerContext::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<Timer>(io, delay);
  timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code) { fn(); });
}

void WorkerContext::post(std::function<void()> fn) {
  asio::post(io, std::move(fn));
}

void WorkerContext::stopClients() {
  for (auto& [_, c] : redis_clients_) c->stop();
  redis_clients_.clear();
}

void WorkerContext::installSnapshot(std::shared_ptr<const snapshot::Snapshot> snap) {
  consumer_stats.clear();
  if (snap->config.server.metrics_consumers_top > 0 && snap->consumers)
    for (const auto& c : snap->consumers->all()) consumer_stats.push_back(&stats.consumer(c.name));
  route_stats = routeTable(stats, *snap, snapshot.get(), route_stats);
  upstream_stats.clear();
  for (const auto& u : snap->upstreams) upstream_stats.push_back(&stats.upstream(u.cfg->name));
  snapshot = std::move(snap);
}

void WorkerContext::installCandidate(std::shared_ptr<const snapshot::Snapshot> snap,
                                     std::uint32_t percent) {
  if (!snap) {
    candidate.reset();
    candidate_percent = 0;
    candidate_route_stats.clear();
    candidate_upstream_stats.clear();
    return;
  }
  if (snap != candidate) {
    candidate_route_stats = routeTable(stats, *snap, snapshot.get(), route_stats);
    candidate_upstream_stats.clear();
    for (const auto& u : snap->upstreams)
      candidate_upstream_stats.push_back(&stats.upstream(u.cfg->name));
  }
  candidate = std::move(snap);
  candidate_percent = percent;
}

observability::RouteStats* WorkerContext::routeStatsOf(const snapshot::Snapshot& snap,
                                                       std::size_t index) {
  if (&snap == snapshot.get() && index < route_stats.size()) return route_stats[index];
  if (&snap == candidate.get() && index < candidate_route_stats.size())
    return candidate_route_stats[index];
  return &stats.route(snap.routes[index].cfg->name);
}

observability::UpstreamStats& WorkerContext::upstreamStatsOf(const snapshot::Upstream& up) {
  const auto in = [&](const snapshot::Snapshot* snap,
                      const std::vector<observability::UpstreamStats*>& table) {
    return snap && up.index < table.size() && up.index < snap->upstreams.size() &&
           &snap->upstreams[up.index] == &up;
  };
  if (in(snapshot.get(), upstream_stats)) return *upstream_stats[up.index];
  if (in(candidate.get(), candidate_upstream_stats)) return *candidate_upstream_stats[up.index];
  return up.stats ? *up.stats : stats.upstream(up.cfg->name);
}

void WorkerContext::add(SessionBase* s) {
  s->prev = nullptr;
  s->next = sessions_;
  if (sessions_) sessions_->prev = s;
  sessions_ = s;
  ++session_count_;
}

void WorkerContext::remove(SessionBase* s) {
  if (s->prev) {
    s->prev->next = s->next;
  } else {
    sessions_ = s->next;
  }
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  --session_count_;
}

}  // namespace portico::proxy
