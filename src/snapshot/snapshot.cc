#include "snapshot/snapshot.h"

#include <algorithm>
#include <unordered_map>

#include "auth/consumer_directory.h"

#include "config/model_parser.h"
#include "config/reader.h"
#include "core/sha256.h"
#include "filters/api_lifecycle/api_lifecycle_filter.h"
#include "filters/subscription/subscription_filter.h"

namespace portico::snapshot {
namespace {

// An application's groups include the plans of its active subscriptions (ADR 0015): `acl`
// and the consumer headers see them; pending and rejected ones give none.
// `storage` holds the copy when one is needed (no copy without active subscriptions).
const std::vector<config::ConsumerConfig>& withPlanGroups(
    const config::Config& cfg, std::vector<config::ConsumerConfig>& storage) {
  std::unordered_map<std::string_view, std::vector<std::string_view>> plans;
  for (const auto& s : cfg.subscriptions)
    if (s.state == config::SubscriptionConfig::State::Active)
      plans[s.application].push_back(s.plan);
  if (plans.empty()) return cfg.consumers;
  std::vector<config::ConsumerConfig>& out = storage = cfg.consumers;
  for (auto& c : out) {
    const auto it = plans.find(c.name);
    if (it == plans.end()) continue;
    for (const auto plan : it->second)
      if (std::find(c.groups.begin(), c.groups.end(), plan) == c.groups.end())
        c.groups.emplace_back(plan);
  }
  return out;
}

// Factories of filter types whose factory depends on the config alone, by type and config:
// one per distinct config in a snapshot (api::FilterType::same_config_shares_factory).
using SharedFactories = std::unordered_map<std::string, std::shared_ptr<const api::FilterFactory>>;

FilterFactories buildFilters(const std::vector<config::PluginConfig>& plugins,
                             const api::FilterRegistry& registry, api::Services& services,
                             const std::shared_ptr<const auth::ConsumerDirectory>& consumers,
                             const std::vector<config::UpstreamConfig>& upstreams,
                             SharedFactories& shared, config::Diagnostics& diag) {
  FilterFactories out;
  static const nlohmann::json kNull;
  for (const auto& p : plugins) {
    const api::FilterType* type = registry.find(p.name);
    if (!type) {
      if (!p.name.empty())
        diag.add(p.path + ".name",
                 "unknown plugin \"" + p.name + "\" (known: " + registry.names() + ")");
      continue;
    }
    std::string key;
    if (type->same_config_shares_factory) {
      key = p.name + '\n' + p.config.dump();
      if (auto it = shared.find(key); it != shared.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    api::FilterBuildContext ctx{p.config.is_null() ? kNull : p.config,
                                p.path + ".config",
                                diag,
                                services,
                                consumers,
                                &upstreams};
    const std::size_t problems = diag.items().size();
    auto f = type->build(ctx);
    if (!f) continue;
    // Only a config that built cleanly is reused: another copy of a faulty one reports its own
    // problems at its own path.
    if (!key.empty() && diag.items().size() == problems) shared.emplace(std::move(key), f);
    out.push_back(std::move(f));
  }
  return out;
}

bool resolveTargets(const config::UpstreamConfig& cfg, const Resolver& resolver, Upstream& up,
                    config::Diagnostics* diag) {
  up.targets.clear();
  bool ok = true;
  for (std::size_t i = 0; i < cfg.targets.size(); ++i) {
    const auto& t = cfg.targets[i];
    const std::string path = config::indexPath(cfg.path + ".targets", i);
    auto hp = parseHostPort(t.address);
    if (!hp) {
      if (diag) diag->add(path, hp.error().message);
      ok = false;
      continue;
    }
    auto addrs = resolver(*hp);
    if (!addrs) {
      if (diag) diag->add(path, addrs.error().message);
      ok = false;
      continue;
    }
    // A name with several addresses contributes one target per address (same weight each).
    for (auto& a : *addrs)
      up.targets.push_back(UpstreamTarget{t.address, hp->host, std::move(a), t.weight});
  }
  return ok;
}

void attachHealth(Upstream& up, upstream::HealthRegistry* registry) {
  up.health.clear();
  for (const auto& t : up.targets)
    up.health.push_back(registry ? registry->target(up.cfg->name, t.address.text)
                                 : std::make_shared<upstream::TargetHealth>());
  up.state =
      registry ? registry->upstream(up.cfg->name) : std::make_shared<upstream::UpstreamState>();
}

void finishUpstream(Upstream& up) {
  const auto& cfg = *up.cfg;
  up.fingerprint = std::to_string(static_cast<int>(cfg.balance)) + "|";
  std::vector<upstream::ConsistentHash::Member> members;
  for (const auto& t : up.targets) {
    up.fingerprint += t.address.text + "*" + std::to_string(t.weight) + ",";
    members.push_back({t.address.text, t.weight});
  }
  if (cfg.balance == config::Balance::ConsistentHash) {
    up.hash_table = cfg.hash.algorithm == config::HashConfig::Algorithm::Maglev
                        ? upstream::makeMaglev(members)
                        : upstream::makeRing(members);
  }
}

}  // namespace

const Upstream* Snapshot::findUpstream(const std::string& name) const {
  for (const auto& u : upstreams) {
    if (u.cfg->name == name) return &u;
  }
  return nullptr;
}

const Route* Snapshot::findRoute(std::string_view name) const {
  for (const auto& r : routes) {
    if (r.cfg->name == name) return &r;
  }
  return nullptr;
}

const Listener* Snapshot::findListener(const std::string& address) const {
  for (const auto& l : listeners) {
    if (l.cfg->listen == address) return &l;
  }
  return nullptr;
}

std::vector<std::string> Snapshot::watchedFiles() const {
  std::vector<std::string> files;
  for (const auto& l : listeners) {
    if (l.tls) files.insert(files.end(), l.tls->files().begin(), l.tls->files().end());
  }
  for (const auto& u : upstreams) {
    if (!u.tls) continue;
    for (const auto* f :
         {&u.tls->config().ca, &u.tls->config().client_cert, &u.tls->config().client_key}) {
      if (!f->empty()) files.push_back(*f);
    }
  }
  auto addFilterFiles = [&](const FilterFactories& factories) {
    for (const auto& f : factories)
      for (auto& file : f->watchedFiles())
        if (std::find(files.begin(), files.end(), file) == files.end())
          files.push_back(std::move(file));
  };
  addFilterFiles(global_filters);
  for (const auto& r : routes) addFilterFiles(r.filters);
  return files;
}

Result<std::shared_ptr<const Snapshot>> buildSnapshot(const SnapshotInputs& in) {
  auto snap = std::make_shared<Snapshot>();
  config::ConfigTree tree;
  config::Diagnostics diag;
  const auto refuse = [&] {
    if (in.errors) *in.errors = diag.items();
    return makeError(diag.format());
  };
  // A store's document is read where it lies (copying 10,000 routes cost milliseconds).
  if (!in.document) config::parseConfigText(in.text, in.file, in.env, tree, diag);
  if (diag.empty())
    snap->config = config::parseModel(in.document ? *in.document : tree.root, diag, in.reuse_route,
                                      in.sections.empty() ? nullptr : &in.sections);
  if (!diag.empty()) return refuse();

  const auto& cfg = snap->config;
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    const std::string path = config::indexPath("listeners", i);
    auto hp = parseHostPort(l.listen);
    if (!hp) diag.add(path + ".listen", hp.error().message);
    Listener runtime{&l, nullptr};
    if (l.tls) {
      auto tls = tls::ServerContext::build(*l.tls, in.ticket_keys);
      if (!tls) {
        diag.add(path + ".tls", tls.error().message);
      } else {
        runtime.tls = *tls;
      }
    }
    snap->listeners.push_back(std::move(runtime));
  }
  if (auto hp = parseHostPort(cfg.server.admin.listen); !cfg.server.admin.listen.empty() && !hp)
    diag.add("server.admin.listen", hp.error().message);

  snap->upstreams.resize(cfg.upstreams.size());
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    auto& up = snap->upstreams[i];
    up.cfg = &cfg.upstreams[i];
    up.index = i;
    resolveTargets(cfg.upstreams[i], in.resolver, up, &diag);
    finishUpstream(up);
    attachHealth(up, in.health);
    if (cfg.upstreams[i].tls) {
      auto tls = tls::ClientContext::build(*cfg.upstreams[i].tls);
      if (!tls) {
        diag.add(cfg.upstreams[i].path + ".tls", tls.error().message);
      } else {
        up.tls = *tls;
      }
    }
  }
  if (const auto& t = cfg.server.tracing; t && in.services) {
    const std::string key = "tracer|" + t->endpoint + "|" + std::to_string(t->sampling) + "|" +
                            t->service_name + "|" + std::to_string(t->batch_size) + "|" +
                            std::to_string(t->queue_size) + "|" +
                            std::to_string(t->flush_interval.count());
    snap->tracer = std::static_pointer_cast<observability::Tracer>(in.services->shared(
        key, [&] { return std::make_shared<observability::Tracer>(*t, *in.services); }));
  }
  // Internal routes are left out of the listeners' matcher: a request for one gets 404, and its
  // methods are not in any Allow list.
  // So are the routes of a draft API: not served until it is published.
  const auto apiOf = [&](const config::RouteConfig& r) -> const config::ApiConfig* {
    for (const auto& a : cfg.apis)
      if (!r.api.empty() && a.name == r.api) return &a;
    return nullptr;
  };
  snap->matcher = router::RouteMatcher::build(cfg.routes, diag, [&](std::size_t i) {
    const auto* api = apiOf(cfg.routes[i]);
    return !cfg.routes[i].internal && !(api && api->state == config::ApiConfig::State::Draft);
  });
  const auto loaded_at = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::vector<config::ConsumerConfig> with_plans;
  snap->consumers = auth::ConsumerDirectory::build(withPlanGroups(cfg, with_plans), diag);
  SharedFactories shared_factories;
  snap->global_filters = buildFilters(cfg.plugins, *in.registry, *in.services, snap->consumers,
                                      cfg.upstreams, shared_factories, diag);
  // Per API that a plan lists: its subscription check (with the plans' limits), shared by its
  // routes (ADR 0015); and key-auth for routes that do not authenticate otherwise.
  std::unordered_map<std::string_view, std::shared_ptr<const api::FilterFactory>> subscriptions;
  std::shared_ptr<const api::FilterFactory> key_auth;
  for (const auto& a : cfg.apis) {
    static const nlohmann::json kNoConfig;
    api::FilterBuildContext ctx{kNoConfig,    "plans",         diag,
                                *in.services, snap->consumers, &cfg.upstreams};
    if (auto f = filters::makeSubscriptionFactory(a, cfg, *in.registry, ctx)) {
      subscriptions.emplace(a.name, std::move(f));
      if (!key_auth) key_auth = in.registry->find("key-auth")->build(ctx);
    }
  }
  snap->routes.resize(cfg.routes.size());
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    auto& r = snap->routes[i];
    r.cfg = &cfg.routes[i];
    r.upstream = r.cfg->upstream.empty() ? nullptr : snap->findUpstream(r.cfg->upstream);
    r.filters = snap->global_filters;
    if (const auto* api = apiOf(*r.cfg))
      if (auto lifecycle = filters::makeApiLifecycleFactory(*api, loaded_at))
        r.filters.insert(r.filters.begin(), std::move(lifecycle));
    if (r.cfg->flow) {
      flow::FlowNames names;
      names.upstream_exists = [&](const std::string& n) { return snap->findUpstream(n); };
      names.internal_route_exists = [&](const std::string& n) {
        for (const auto& rc : cfg.routes)
          if (rc.name == n) return rc.internal;
        return false;
      };
      r.flow = flow::compileFlow(*r.cfg->flow, r.cfg->path + ".flow", names, diag);
    }
    if (r.cfg->internal)
      r.internal_matcher = router::RouteMatcher::build(
          cfg.routes, diag, [i](std::size_t j) { return j == i; }, true);
    auto own = buildFilters(r.cfg->plugins, *in.registry, *in.services, snap->consumers,
                            cfg.upstreams, shared_factories, diag);
    if (!r.cfg->anonymous.empty()) r.anonymous = snap->consumers->byName(r.cfg->anonymous);
    r.filters.insert(r.filters.end(), own.begin(), own.end());
    if (const auto sub = subscriptions.find(r.cfg->api); sub != subscriptions.end()) {
      // After the route's last authenticating filter; without one, key-auth before its own.
      std::size_t at = r.filters.size();
      while (at > 0 && !r.filters[at - 1]->create()->authenticates()) --at;
      if (at == 0) {
        at = r.filters.size() - own.size();
        if (key_auth)
          r.filters.insert(r.filters.begin() + static_cast<std::ptrdiff_t>(at++), key_auth);
      }
      r.filters.insert(r.filters.begin() + static_cast<std::ptrdiff_t>(at), sub->second);
    }
  }
  if (!diag.empty()) return refuse();

  snap->version = in.version;
  snap->hash = sha256Hex(in.text);
  snap->loaded_at = std::chrono::system_clock::now();
  snap->redacted = in.document
                       ? in.document
                       : std::make_shared<const nlohmann::json>(config::redacted(std::move(tree)));
  snap->source = in.file;
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

std::shared_ptr<const Snapshot> refreshAddresses(const Snapshot& current,
                                                 const SnapshotInputs& in) {
  bool changed = false;
  std::vector<Upstream> fresh(current.upstreams.size());
  for (std::size_t i = 0; i < current.upstreams.size(); ++i) {
    fresh[i].cfg = current.upstreams[i].cfg;
    fresh[i].index = i;
    if (!resolveTargets(*fresh[i].cfg, in.resolver, fresh[i], nullptr)) return nullptr;
    finishUpstream(fresh[i]);
    changed |= fresh[i].fingerprint != current.upstreams[i].fingerprint;
  }
  if (!changed) return nullptr;
  // Rebuild from the same text so every pointer inside the new snapshot is its own.
  auto rebuilt = buildSnapshot(in);
  if (!rebuilt) return nullptr;
  return *rebuilt;
}

}  // namespace portico::snapshot
