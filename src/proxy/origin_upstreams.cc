#include "proxy/origin_upstreams.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/ip/tcp.hpp>

#include "http/url.h"

namespace portico::proxy {

namespace {

constexpr auto kResolveAgainAfter = std::chrono::seconds(60);

SocketAddress toAddress(const tcp::endpoint& ep) {
  SocketAddress a;
  std::memcpy(&a.storage, ep.data(), ep.size());
  a.length = static_cast<socklen_t>(ep.size());
  const std::string ip = ep.address().to_string();
  a.text = (ep.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(ep.port());
  return a;
}

// Before a new origin goes in: out go the entries due for resolving again, or else the one
// resolved longest ago (calls running keep theirs; its idle connections time out in the pool).
void makeRoom(OriginUpstreams& origins, Clock::time_point now) {
  if (origins.by_key.size() < OriginUpstreams::kMaxOrigins) return;
  std::erase_if(origins.by_key, [&](const auto& entry) {
    return now - entry.second->resolved_at >= kResolveAgainAfter;
  });
  if (origins.by_key.size() < OriginUpstreams::kMaxOrigins) return;
  origins.by_key.erase(std::min_element(
      origins.by_key.begin(), origins.by_key.end(),
      [](const auto& a, const auto& b) { return a.second->resolved_at < b.second->resolved_at; }));
}

}  // namespace

std::string originTarget(const std::string& url) {
  auto u = http::parseAbsoluteUrl(url);
  return u ? u->target : std::string("/");
}

std::string originAuthority(const std::string& url) {
  auto u = http::parseAbsoluteUrl(url);
  return u ? u->authority : std::string();
}

Task<Result<std::shared_ptr<const OriginUpstream>>> originUpstream(WorkerContext& w,
                                                                   const std::string& url,
                                                                   const std::string& ca_file) {
  auto parts = http::parseAbsoluteUrl(url);
  if (!parts) co_return parts.error();
  const std::string key = (parts->https ? "https://" : "http://") + parts->authority +
                          (ca_file.empty() ? "" : "|" + ca_file);
  if (!w.origins) w.origins = std::make_shared<OriginUpstreams>();
  const auto now = w.time.steady();
  if (auto it = w.origins->by_key.find(key);
      it != w.origins->by_key.end() && now - it->second->resolved_at < kResolveAgainAfter)
    co_return it->second;

  tcp::resolver resolver(w.io);
  boost::system::error_code ec;
  auto results = co_await resolver.async_resolve(parts->host, std::to_string(parts->port),
                                                 asio::redirect_error(kUseAwaitable, ec));
  if (ec || results.empty()) co_return makeError("cannot resolve \"" + parts->host + "\"");

  auto origin = std::make_shared<OriginUpstream>();
  origin->resolved_at = now;
  auto& cfg = origin->cfg;
  // The name keys the connection pool: an origin trusted through its own CA must never share
  // connections with the same origin verified against the system CAs.
  cfg.name = ca_file.empty() ? key : key.substr(0, key.find('|')) + " (ca " + ca_file + ")";
  cfg.path = "url";
  cfg.retries.attempts = 2;  // a second target or a fresh connection after a connect failure
  if (parts->https) {
    config::UpstreamTlsConfig tls;
    tls.ca = ca_file;
    auto ctx = tls::ClientContext::build(tls);
    if (!ctx) co_return makeError("TLS for \"" + url + "\": " + ctx.error().message);
    origin->upstream.tls = *ctx;
  }
  auto& up = origin->upstream;
  up.cfg = &cfg;
  up.index = static_cast<std::size_t>(-1);  // not in any snapshot: metrics by name
  for (const auto& entry : results) {
    SocketAddress a = toAddress(entry.endpoint());
    bool seen = false;
    for (const auto& t : up.targets) seen |= t.address == a;
    if (seen) continue;
    up.fingerprint += a.text + ",";
    up.targets.push_back(snapshot::UpstreamTarget{parts->authority, parts->host, std::move(a), 1});
  }
  up.state = std::make_shared<upstream::UpstreamState>();
  // Its own balancer, not one in the worker's table by name: origins come and go.
  up.balancer = upstream::makeLoadBalancer(
      cfg.balance, std::vector<std::uint32_t>(up.targets.size(), 1), nullptr,
      0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(w.id + 1));
  auto& origins = *w.origins;
  if (!origins.own_series.contains(cfg.name) &&
      origins.own_series.size() >= OriginUpstreams::kMaxOrigins)
    up.stats = &w.stats.upstream(OriginUpstreams::kOtherOrigins);
  else
    origins.own_series.insert(cfg.name);
  if (!origins.by_key.contains(key)) makeRoom(origins, now);
  origins.by_key[key] = origin;
  co_return origin;
}

}  // namespace portico::proxy
