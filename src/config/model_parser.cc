#include "config/model_parser.h"

#include <cctype>

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <ctime>

#include "config/parse_helpers.h"
#include "config/reader.h"
#include "core/sha256.h"
#include "http/token.h"

namespace portico::config {
namespace {

using nlohmann::json;

// An RFC 3339 time in UTC ("2027-06-30T00:00:00Z") as unix seconds.
std::optional<std::int64_t> parseUtcTime(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  if (*end == '.')  // fractions of a second are dropped
    while (std::isdigit(static_cast<unsigned char>(*++end))) {
    }
  if (std::string_view(end) != "Z" && std::string_view(end) != "+00:00") return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

void parseLimits(const json& j, const std::string& path, Diagnostics& d, Limits& l) {
  ObjectReader r(j, path, d);
  r.size("max_header_bytes", l.max_header_bytes);
  r.number("max_headers", 1, 10000, l.max_headers);
  r.size("max_body_bytes", l.max_body_bytes);
  r.size("max_uri_bytes", l.max_uri_bytes);
  r.duration("header_timeout", l.header_timeout);
  r.duration("idle_timeout", l.idle_timeout);
  r.number("max_connections", 1, 10'000'000, l.max_connections);
  r.number("max_calls_per_request", 1, 10'000, l.max_calls_per_request);
  r.finish();
  if (l.max_header_bytes < 1024) d.add(joinPath(path, "max_header_bytes"), "must be at least 1KiB");
  if (l.max_uri_bytes < 64) d.add(joinPath(path, "max_uri_bytes"), "must be at least 64");
}

void parseRollout(const json& j, const std::string& path, Diagnostics& d, RolloutConfig& out) {
  ObjectReader r(j, path, d);
  if (const json* steps = r.get("steps")) {
    const std::string at = r.childPath("steps");
    out.steps.clear();
    if (!steps->is_array() || steps->empty()) {
      d.add(at, "expected a list of percents ending at 100");
    } else {
      for (std::size_t i = 0; i < steps->size(); ++i) {
        std::int64_t n = 0;
        if (!readInt((*steps)[i], at + "[" + std::to_string(i) + "]", d, 1, 100, n)) continue;
        if (!out.steps.empty() && n <= out.steps.back())
          d.add(at + "[" + std::to_string(i) + "]", "steps must be ascending");
        out.steps.push_back(static_cast<int>(n));
      }
      if (!out.steps.empty() && out.steps.back() != 100) d.add(at, "the last step must be 100");
    }
  }
  r.duration("interval", out.interval);
  if (out.interval < 1s) d.add(r.childPath("interval"), "must be at least 1s");
  if (const json* g = r.get("guard")) {
    ObjectReader gr(*g, r.childPath("guard"), d);
    gr.ratio("max_5xx_ratio_increase", out.max_5xx_ratio_increase);
    gr.real("max_p99_ratio", 1, 1000, out.max_p99_ratio);
    gr.number("min_requests", 1, 100000000, out.min_requests);
    gr.finish();
  }
  r.finish();
}

void parseServer(const json& j, const std::string& path, Diagnostics& d, ServerConfig& s) {
  ObjectReader r(j, path, d);
  if (const json* w = r.get("workers")) {
    if (w->is_string() && w->get<std::string>() == "auto") {
      s.workers = 0;
    } else {
      std::int64_t n = 0;
      if (readInt(*w, r.childPath("workers"), d, 1, 1024, n)) s.workers = static_cast<int>(n);
    }
  }
  if (const json* a = r.get("admin")) {
    ObjectReader ar(*a, r.childPath("admin"), d);
    ar.string("listen", s.admin.listen);
    ar.boolean("dashboard", s.admin.dashboard);
    forEachItem(ar, "tokens", [&](const json& t, const std::string& tp) {
      AdminToken token;
      ObjectReader tr(t, tp, d);
      tr.string("name", token.name, true);
      std::string secret;
      tr.string("token", secret, true);
      tr.choice("scope", {{"read", false}, {"write", true}}, token.write);
      tr.finish();
      if (tr.has("token") && secret.size() < 16)
        d.add(joinPath(tp, "token"), "must be at least 16 characters");
      token.sha256 = sha256Hex(secret);  // the token itself is not kept
      s.admin.tokens.push_back(std::move(token));
    });
    if (const json* t = ar.get("tls")) {
      s.admin.tls = parseTls(*t, ar.childPath("tls"), d);
      s.admin.tls->offer_h2 = false;  // the admin listener speaks HTTP/1.1
    }
    ar.finish();
  }
  if (const json* l = r.get("limits")) parseLimits(*l, r.childPath("limits"), d, s.limits);
  r.duration("drain_timeout", s.drain_timeout);
  r.duration("dns_refresh", s.dns_refresh);
  r.boolean("watch_config", s.watch_config);
  if (const json* m = r.get("metrics")) {
    ObjectReader mr(*m, r.childPath("metrics"), d);
    mr.number("consumers_top", 0, 1000, s.metrics_consumers_top);
    mr.finish();
  }
  if (const json* ro = r.get("rollout")) parseRollout(*ro, r.childPath("rollout"), d, s.rollout);
  if (const json* po = r.get("portal")) s.portal = parsePortal(*po, r.childPath("portal"), d);
  if (const json* t = r.get("tracing")) {
    TracingConfig tc;
    ObjectReader tr(*t, r.childPath("tracing"), d);
    tr.string("endpoint", tc.endpoint, true);
    tr.ratio("sampling", tc.sampling);
    tr.string("service_name", tc.service_name);
    tr.number("batch_size", 1, 100000, tc.batch_size);
    tr.number("queue_size", 1, 10000000, tc.queue_size);
    tr.duration("flush_interval", tc.flush_interval);
    tr.finish();
    if (!tc.endpoint.empty() && tc.endpoint.rfind("http://", 0) != 0 &&
        tc.endpoint.rfind("https://", 0) != 0)
      d.add(tr.childPath("endpoint"), "must be an http:// or https:// URL");
    if (tc.flush_interval.count() <= 0) d.add(tr.childPath("flush_interval"), "must be positive");
    s.tracing = std::move(tc);
  }
  r.finish();
}

void parseValueMatches(ObjectReader& r, std::string_view key, std::vector<ValueMatch>& out) {
  // Either a map name -> exact value, or a list of {name, exact|regex|present}.
  const json* j = r.get(key);
  if (!j) return;
  std::string path = r.childPath(key);
  Diagnostics& d = r.diagnostics();
  if (j->is_object()) {
    for (auto it = j->begin(); it != j->end(); ++it) {
      ValueMatch m;
      m.name = it.key();
      std::string v;
      if (readString(it.value(), joinPath(path, it.key()), d, v)) m.exact = v;
      out.push_back(std::move(m));
    }
    return;
  }
  if (!j->is_array()) {
    d.add(path, "expected a map of name: value, or a list of {name, exact | regex | present}");
    return;
  }
  for (size_t i = 0; i < j->size(); ++i) {
    ObjectReader mr((*j)[i], indexPath(path, i), d);
    ValueMatch m;
    mr.string("name", m.name, true);
    mr.optionalString("exact", m.exact);
    mr.optionalString("regex", m.regex);
    mr.boolean("present", m.present);
    mr.finish();
    if (m.exact && m.regex) d.add(mr.path(), "give either exact or regex, not both");
    if (!m.present && (m.exact || m.regex))
      d.add(mr.path(), "present: false cannot be combined with exact or regex");
    out.push_back(std::move(m));
  }
}

void parseMatch(const json& j, const std::string& path, Diagnostics& d, RouteMatch& m) {
  ObjectReader r(j, path, d);
  r.stringList("hosts", m.hosts);
  r.optionalString("path", m.path);
  r.optionalString("path_prefix", m.path_prefix);
  r.optionalString("path_regex", m.path_regex);
  r.stringList("methods", m.methods);
  parseValueMatches(r, "headers", m.headers);
  parseValueMatches(r, "query", m.query);
  r.finish();
  int kinds = !!m.path + !!m.path_prefix + !!m.path_regex;
  if (kinds > 1) d.add(path, "give only one of path, path_prefix, path_regex");
  for (auto* p : {&m.path, &m.path_prefix}) {
    if (*p && (p->value().empty() || p->value()[0] != '/'))
      d.add(joinPath(path, p == &m.path ? "path" : "path_prefix"), "must start with /");
  }
  for (size_t i = 0; i < m.methods.size(); ++i) {
    auto& method = m.methods[i];
    std::transform(method.begin(), method.end(), method.begin(), ::toupper);
    if (!http::isMethod(method))
      d.add(indexPath(joinPath(path, "methods"), i), "not a valid method");
  }
  for (size_t i = 0; i < m.hosts.size(); ++i) {
    auto& h = m.hosts[i];
    std::transform(h.begin(), h.end(), h.begin(), ::tolower);
    auto star = h.find('*');
    if (h.empty() || (star != std::string::npos && (star != 0 || h.size() < 3 || h[1] != '.')))
      d.add(indexPath(joinPath(path, "hosts"), i),
            "must be a host name or a wildcard \"*.example.com\"");
  }
}

void parseHttp2(const json& j, const std::string& path, Diagnostics& d, Http2Config& h) {
  ObjectReader r(j, path, d);
  r.boolean("enabled", h.enabled);
  r.number("max_concurrent_streams", 1, 10000, h.max_concurrent_streams);
  // Window and frame bounds are the protocol's own (RFC 9113 6.5.2).
  auto sizeIn = [&](const char* key, std::uint64_t min, std::uint64_t max, std::uint32_t& out) {
    std::uint64_t size = out;
    if (!r.has(key) || !r.size(key, size)) return;
    if (size < min || size > max) {
      d.add(joinPath(path, key),
            "must be between " + std::to_string(min) + " and " + std::to_string(max) + " bytes");
      return;
    }
    out = static_cast<std::uint32_t>(size);
  };
  sizeIn("initial_window", 1024, 2147483647, h.initial_window);
  sizeIn("connection_window", 65535, 2147483647, h.connection_window);
  sizeIn("max_frame_size", 16384, 16777215, h.max_frame_size);
  sizeIn("max_header_list_bytes", 1024, 16 * 1024 * 1024, h.max_header_list_bytes);
  r.number("max_resets_per_second", 1, 100000, h.max_resets_per_second);
  r.finish();
}

}  // namespace

void readLabels(ObjectReader& r, Labels& out) {
  const json* j = r.get("labels");
  if (!j) return;
  if (!j->is_object()) {
    r.diagnostics().add(r.childPath("labels"), "expected a map of strings");
    return;
  }
  for (auto it = j->begin(); it != j->end(); ++it) {
    std::string v;
    if (readString(*it, joinPath(r.childPath("labels"), it.key()), r.diagnostics(), v))
      out[it.key()] = std::move(v);
  }
}

TlsConfig parseTls(const json& j, const std::string& path, Diagnostics& d) {
  TlsConfig t;
  ObjectReader r(j, path, d);
  forEachItem(r, "certificates", [&](const json& c, const std::string& cp) {
    CertificateConfig cert;
    ObjectReader cr(c, cp, d);
    cr.string("cert", cert.cert, true);
    cr.string("key", cert.key, true);
    cr.finish();
    t.certificates.push_back(std::move(cert));
  });
  if (!r.has("certificates")) r.require("certificates");
  if (r.string("min_version", t.min_version) && t.min_version != "1.2" && t.min_version != "1.3")
    d.add(r.childPath("min_version"), "must be \"1.2\" or \"1.3\"");
  r.string("ciphers", t.ciphers);
  r.string("ciphersuites", t.ciphersuites);
  if (const json* ca = r.get("client_auth")) {
    ClientAuthConfig a;
    ObjectReader ar(*ca, r.childPath("client_auth"), d);
    ar.string("ca", a.ca, true);
    std::string mode = "required";
    ar.string("mode", mode);
    if (mode == "optional") {
      a.mode = ClientAuthConfig::Mode::Optional;
    } else if (mode != "required") {
      d.add(ar.childPath("mode"), "must be required or optional");
    }
    ar.string("subject_header", a.subject_header);
    ar.string("san_header", a.san_header);
    ar.finish();
    t.client_auth = std::move(a);
  }
  r.finish();
  if (r.has("certificates") && t.certificates.empty())
    d.add(r.childPath("certificates"), "at least one certificate is required");
  return t;
}

namespace {

PluginConfig parsePlugin(const json& j, const std::string& path, Diagnostics& d) {
  PluginConfig p;
  p.path = path;
  ObjectReader r(j, path, d);
  r.string("name", p.name, true);
  if (const json* c = r.get("config")) p.config = *c;
  readLabels(r, p.labels);
  r.finish();
  return p;
}

void parseRoute(const json& j, const std::string& path, Diagnostics& d, RouteConfig& route) {
  route.path = path;
  ObjectReader r(j, path, d);
  r.string("name", route.name, true);
  if (const json* m = r.get("match")) parseMatch(*m, r.childPath("match"), d, route.match);
  r.number("priority", -1'000'000, 1'000'000, route.priority);
  r.boolean("strip_prefix", route.strip_prefix);
  r.boolean("preserve_host", route.preserve_host);
  r.optionalString("rewrite", route.rewrite);
  if (const json* ws = r.get("websocket")) {
    ObjectReader wr(*ws, r.childPath("websocket"), d);
    wr.duration("idle_timeout", route.websocket_idle_timeout);
    wr.duration("max_duration", route.websocket_max_duration);
    wr.finish();
  }
  r.string("upstream", route.upstream);
  r.boolean("internal", route.internal);
  if (const json* f = r.get("flow")) route.flow = *f;
  forEachItem(r, "plugins", [&](const json& p, const std::string& pp) {
    route.plugins.push_back(parsePlugin(p, pp, d));
  });
  r.choice("auth_mode", {{"any", RouteConfig::AuthMode::Any}, {"all", RouteConfig::AuthMode::All}},
           route.auth_mode);
  r.string("anonymous", route.anonymous);
  r.string("api", route.api);
  readLabels(r, route.labels);
  r.finish();
  if (route.strip_prefix && !route.match.path_prefix)
    d.add(joinPath(path, "strip_prefix"), "needs match.path_prefix");
  if (route.rewrite && (route.rewrite->empty() || (*route.rewrite)[0] != '/'))
    d.add(joinPath(path, "rewrite"), "must be a path template starting with /");
  if (route.strip_prefix && route.rewrite)
    d.add(path, "give either strip_prefix or rewrite, not both");
}

ApiConfig parseApi(const json& j, const std::string& path, Diagnostics& d) {
  ApiConfig api;
  api.path = path;
  ObjectReader r(j, path, d);
  r.string("name", api.name, true);
  r.string("version", api.version);
  r.string("base_path", api.base_path);
  if (api.base_path.empty() || api.base_path[0] != '/')
    d.add(r.childPath("base_path"), "must start with /");
  r.choice("state",
           {{"draft", ApiConfig::State::Draft},
            {"published", ApiConfig::State::Published},
            {"deprecated", ApiConfig::State::Deprecated},
            {"retired", ApiConfig::State::Retired}},
           api.state);
  for (const auto& [key, out] :
       {std::pair{"sunset", &api.sunset}, std::pair{"deprecated_at", &api.deprecated_at}}) {
    std::string text;
    if (!r.string(key, text) || text.empty()) continue;
    *out = parseUtcTime(text);
    if (!*out) d.add(r.childPath(key), "expected a UTC time such as 2027-06-30T00:00:00Z");
  }
  r.string("docs", api.docs);
  if (const json* o = r.get("openapi")) api.openapi = *o;
  readLabels(r, api.labels);
  r.finish();
  return api;
}

template <class T>
void checkUniqueNames(const std::vector<T>& items, const std::string& section, Diagnostics& d) {
  std::unordered_map<std::string_view, size_t> seen;  // views: 10,000 routes, no copies
  seen.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& name = items[i].name;
    if (name.empty()) continue;
    auto [it, inserted] = seen.emplace(name, i);
    if (!inserted)
      d.add(indexPath(section, i) + ".name",
            "duplicate name \"" + name + "\" (also " + indexPath(section, it->second) + ")");
  }
}

// Routes name their API; an API's routes lie under its base path.
void checkApis(const Config& c, Diagnostics& d) {
  for (const auto& route : c.routes) {
    if (route.api.empty()) continue;
    const auto api = std::find_if(c.apis.begin(), c.apis.end(),
                                  [&](const ApiConfig& a) { return a.name == route.api; });
    if (api == c.apis.end()) {
      d.add(route.path + ".api", "unknown api \"" + route.api + "\"");
      continue;
    }
    std::string base = api->base_path;
    if (base.size() > 1 && base.back() == '/') base.pop_back();
    const auto& m = route.match;
    const std::string& p = m.path ? *m.path : m.path_prefix ? *m.path_prefix : std::string();
    const bool under =
        base == "/" || p == base ||
        (p.size() > base.size() && p.compare(0, base.size(), base) == 0 && p[base.size()] == '/');
    if (!under)
      d.add(route.path + ".match", "route \"" + route.name + "\" of api \"" + api->name +
                                       "\" must be under its base_path " + api->base_path);
  }
}

}  // namespace

UpstreamTlsConfig parseClientTls(const nlohmann::json& node, const std::string& path,
                                 Diagnostics& d) {
  UpstreamTlsConfig tls;
  ObjectReader tr(node, path, d);
  tr.string("ca", tls.ca);
  tr.string("server_name", tls.server_name);
  tr.boolean("verify", tls.verify);
  tr.string("client_cert", tls.client_cert);
  tr.string("client_key", tls.client_key);
  tr.finish();
  if (tls.client_cert.empty() != tls.client_key.empty())
    d.add(tr.path(), "give both client_cert and client_key, or neither");
  return tls;
}

Config parseModel(const json& root, Diagnostics& d, const RouteReuse& reuse,
                  const ExternalSections* sections) {
  Config c;
  if (root.is_null()) {
    d.add("", "the config is empty");
    return c;
  }
  ObjectReader r(root, "", d);
  if (!r.valid()) return c;
  std::int64_t version = 0;
  if (r.integer("version", 1, 1, version, true)) c.version = static_cast<int>(version);
  if (const json* s = r.get("server")) parseServer(*s, "server", d, c.server);
  forEachItem(r, "listeners", [&](const json& j, const std::string& p) {
    ListenerConfig l;
    ObjectReader lr(j, p, d);
    lr.string("name", l.name, true);
    lr.string("listen", l.listen, true);
    if (const json* t = lr.get("tls")) l.tls = parseTls(*t, lr.childPath("tls"), d);
    if (const json* h = lr.get("http2")) parseHttp2(*h, lr.childPath("http2"), d, l.http2);
    if (l.tls) l.tls->offer_h2 = l.http2.enabled;
    lr.finish();
    c.listeners.push_back(std::move(l));
  });
  forEachItem(
      r, "upstreams",
      [&](const json& j, const std::string& p) {
        c.upstreams.emplace_back();
        parseUpstream(j, p, d, c.upstreams.back());
      },
      sections);
  forEachItem(
      r, "routes",
      [&](const json& j, const std::string& p) {
        const auto name = j.is_object() ? j.find("name") : j.end();
        const RouteConfig* same = reuse && name != j.end() && name->is_string()
                                      ? reuse(name->get<std::string>())
                                      : nullptr;
        if (!same) {
          c.routes.emplace_back();
          parseRoute(j, p, d, c.routes.back());
          return;
        }
        RouteConfig& route = c.routes.emplace_back(*same);
        route.path = p;  // its place may have moved
        for (std::size_t i = 0; i < route.plugins.size(); ++i)
          route.plugins[i].path = indexPath(joinPath(p, "plugins"), i);
      },
      sections);
  forEachItem(
      r, "plugins",
      [&](const json& j, const std::string& p) { c.plugins.push_back(parsePlugin(j, p, d)); },
      sections);
  forEachItem(
      r, "consumers",
      [&](const json& j, const std::string& p) {
        ConsumerConfig consumer;
        consumer.path = p;
        ObjectReader cr(j, p, d);
        cr.string("name", consumer.name, true);
        cr.optionalString("custom_id", consumer.custom_id);
        cr.stringList("groups", consumer.groups);
        if (const json* creds = cr.get("credentials")) consumer.credentials = *creds;
        readLabels(cr, consumer.labels);
        cr.finish();
        c.consumers.push_back(std::move(consumer));
      },
      sections);
  forEachItem(
      r, "apis", [&](const json& j, const std::string& p) { c.apis.push_back(parseApi(j, p, d)); },
      sections);
  forEachItem(
      r, "plans",
      [&](const json& j, const std::string& p) { c.plans.push_back(parsePlan(j, p, d)); },
      sections);
  forEachItem(
      r, "accounts",
      [&](const json& j, const std::string& p) { c.accounts.push_back(parseAccount(j, p, d)); },
      sections);
  forEachItem(
      r, "subscriptions",
      [&](const json& j, const std::string& p) {
        c.subscriptions.push_back(parseSubscription(j, p, d));
      },
      sections);
  if (const json* st = r.get("store")) {
    ObjectReader sr(*st, "store", d);
    using Type = StoreConfig::Type;
    sr.choice("type", {{"file", Type::File}, {"sqlite", Type::Sqlite}, {"etcd", Type::Etcd}},
              c.store.type, "store type");
    sr.string("path", c.store.path);
    sr.stringList("endpoints", c.store.endpoints);
    sr.string("prefix", c.store.prefix);
    sr.string("cache", c.store.cache);
    sr.string("username", c.store.username);
    sr.string("password", c.store.password);
    sr.duration("usage_flush", c.store.usage_flush);
    if (c.store.usage_flush.count() <= 0) d.add("store.usage_flush", "must be positive");
    if (const json* t = sr.get("tls")) {  // the names: ca, cert, key
      ObjectReader tr(*t, "store.tls", d);
      UpstreamTlsConfig tls;
      tr.string("ca", tls.ca);
      tr.string("cert", tls.client_cert);
      tr.string("key", tls.client_key);
      tr.string("server_name", tls.server_name);
      tr.finish();
      if (tls.client_cert.empty() != tls.client_key.empty())
        d.add("store.tls", "give both cert and key, or neither");
      c.store.tls = std::move(tls);
    }
    sr.finish();
    if (c.store.type == Type::Sqlite) {
      if (c.store.path.empty()) d.add("store.path", "is required with type sqlite");
    } else if (c.store.type == Type::Etcd) {
      if (c.store.endpoints.empty()) d.add("store.endpoints", "is required with type etcd");
      for (std::size_t i = 0; i < c.store.endpoints.size(); ++i)
        if (c.store.endpoints[i].rfind(c.store.tls ? "https://" : "http://", 0) != 0)
          d.add(indexPath("store.endpoints", i),
                c.store.tls ? "expected https://host:port (store.tls is set)"
                            : "expected http://host:port (https needs store.tls)");
      if (c.store.prefix.empty() || c.store.prefix.front() != '/' || c.store.prefix.back() == '/')
        d.add("store.prefix", "expected a key prefix like /portico (no trailing slash)");
    }
    if (c.store.username.empty() != c.store.password.empty())
      d.add("store", "give both username and password, or neither");
    if (!c.store.username.empty() && c.store.type != StoreConfig::Type::Etcd)
      d.add("store.username", "only with type etcd");
    if (!c.store.cache.empty() && c.store.type != StoreConfig::Type::Etcd)
      d.add("store.cache", "only with type etcd (a database is its own cache)");
  }
  if (const json* h = r.get("consumer_headers")) {
    ObjectReader hr(*h, "consumer_headers", d);
    hr.string("name", c.consumer_headers.name);
    hr.string("groups", c.consumer_headers.groups);
    hr.string("custom_id", c.consumer_headers.custom_id);
    hr.string("anonymous", c.consumer_headers.anonymous);
    hr.finish();
  }
  r.finish();

  if (c.listeners.empty() && r.valid()) d.add("listeners", "at least one listener is required");
  checkUniqueNames(c.listeners, "listeners", d);
  checkUniqueNames(c.upstreams, "upstreams", d);
  checkUniqueNames(c.routes, "routes", d);
  checkUniqueNames(c.consumers, "consumers", d);
  checkUniqueNames(c.apis, "apis", d);
  checkApis(c, d);
  checkUniqueNames(c.plans, "plans", d);
  checkUniqueNames(c.subscriptions, "subscriptions", d);
  checkUniqueNames(c.accounts, "accounts", d);
  checkPortalEntities(c, d);
  std::set<std::string> addresses;
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    if (!addresses.insert(c.listeners[i].listen).second)
      d.add(indexPath("listeners", i) + ".listen", "address used twice");
  }
  std::set<std::string> upstreams;
  for (const auto& u : c.upstreams) upstreams.insert(u.name);
  for (const auto& route : c.routes) {
    bool serves_locally = false;
    for (const auto& p : route.plugins) serves_locally |= p.name == "static-response";
    if (route.flow && !route.upstream.empty()) {
      d.add(route.path, "route \"" + route.name + "\" has both upstream and flow: give one");
    } else if (route.flow) {
      // its calls are checked when the flow is compiled
    } else if (route.upstream.empty()) {
      if (!serves_locally)
        d.add(route.path + ".upstream", "is required (or a flow, or a static-response plugin)");
    } else if (!upstreams.count(route.upstream)) {
      d.add(route.path + ".upstream", "unknown upstream \"" + route.upstream + "\"");
    }
  }
  std::unordered_set<std::string_view> consumer_names;
  for (const auto& consumer : c.consumers) consumer_names.insert(consumer.name);
  for (const auto& route : c.routes) {
    if (!route.anonymous.empty() && !consumer_names.count(route.anonymous))
      d.add(route.path + ".anonymous", "unknown consumer \"" + route.anonymous + "\"");
  }
  return c;
}

}  // namespace portico::config
