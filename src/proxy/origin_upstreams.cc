#include "proxy/origin_upstreams.h"

#include <arpa/inet.h>

#include <cstring>

#include <boost/asio/ip/tcp.hpp>

namespace portico::proxy {

namespace {

constexpr auto kResolveAgainAfter = std::chrono::seconds(60);

struct UrlParts {
  bool https = false;
  std::string authority;  // as written
  std::string target;     // path and query
};

Result<UrlParts> splitUrl(const std::string& url) {
  UrlParts p;
  std::string_view rest = url;
  if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    p.https = true;
    rest.remove_prefix(8);
  } else {
    return makeError("not an http:// or https:// URL: \"" + url + "\"");
  }
  const auto end = rest.find_first_of("/?#");
  p.authority = std::string(rest.substr(0, end));
  p.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (const auto hash = p.target.find('#'); hash != std::string::npos) p.target.resize(hash);
  if (p.target.empty() || p.target.front() == '?') p.target.insert(0, "/");
  if (p.authority.empty() || p.authority.find('@') != std::string::npos)
    return makeError("invalid host in \"" + url + "\"");
  return p;
}

// host:port with the scheme's default port filled in.
Result<HostPort> hostPort(const UrlParts& p) {
  const std::string& a = p.authority;
  const auto close = a.rfind(']');
  const bool has_port = a.front() == '[' ? close != std::string::npos && close + 1 < a.size()
                                         : a.find(':') != std::string::npos;
  return parseHostPort(has_port ? a : a + (p.https ? ":443" : ":80"));
}

SocketAddress toAddress(const tcp::endpoint& ep) {
  SocketAddress a;
  std::memcpy(&a.storage, ep.data(), ep.size());
  a.length = static_cast<socklen_t>(ep.size());
  const std::string ip = ep.address().to_string();
  a.text = (ep.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(ep.port());
  return a;
}

}  // namespace

std::string originTarget(const std::string& url) {
  auto p = splitUrl(url);
  return p ? p->target : std::string("/");
}

std::string originAuthority(const std::string& url) {
  auto p = splitUrl(url);
  return p ? p->authority : std::string();
}

Task<Result<std::shared_ptr<const OriginUpstream>>> originUpstream(WorkerContext& w,
                                                                   const std::string& url,
                                                                   const std::string& ca_file) {
  auto parts = splitUrl(url);
  if (!parts) co_return parts.error();
  auto hp = hostPort(*parts);
  if (!hp) co_return hp.error();
  const std::string key = (parts->https ? "https://" : "http://") + hp->host + ":" +
                          std::to_string(hp->port) + (ca_file.empty() ? "" : "|" + ca_file);
  if (!w.origins) w.origins = std::make_shared<OriginUpstreams>();
  const auto now = w.time.steady();
  if (auto it = w.origins->by_key.find(key);
      it != w.origins->by_key.end() && now - it->second->resolved_at < kResolveAgainAfter)
    co_return it->second;

  tcp::resolver resolver(w.io);
  boost::system::error_code ec;
  auto results = co_await resolver.async_resolve(hp->host, std::to_string(hp->port),
                                                 asio::redirect_error(kUseAwaitable, ec));
  if (ec || results.empty()) co_return makeError("cannot resolve \"" + hp->host + "\"");

  auto origin = std::make_shared<OriginUpstream>();
  origin->resolved_at = now;
  auto& cfg = origin->cfg;
  cfg.name = key.substr(0, key.find('|'));
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
    up.targets.push_back(snapshot::UpstreamTarget{parts->authority, hp->host, std::move(a), 1});
  }
  up.state = std::make_shared<upstream::UpstreamState>();
  w.origins->by_key[key] = origin;
  co_return origin;
}

}  // namespace portico::proxy
