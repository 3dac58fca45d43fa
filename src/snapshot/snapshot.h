#pragma once
// The compiled, immutable configuration. Built on the control thread, then shared (as
// shared_ptr<const Snapshot>) with every worker. In-flight requests keep the snapshot they
// started with.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/filter.h"
#include "api/filter_registry.h"
#include "api/services.h"
#include "config/config_tree.h"
#include "config/model.h"
#include "config/model_parser.h"
#include "core/address.h"
#include "flow/flow.h"
#include "observability/tracing.h"
#include "router/route_matcher.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"
#include "upstream/health.h"
#include "upstream/lb/consistent_hash.h"
#include "upstream/lb/load_balancer.h"

namespace portico::observability {
struct UpstreamStats;
}

namespace portico::snapshot {

using FilterFactories = std::vector<std::shared_ptr<const api::FilterFactory>>;

struct UpstreamTarget {
  std::string configured;  // as written, e.g. "users.internal:9001"
  std::string host;        // its host part (SNI and certificate name for TLS upstreams)
  SocketAddress address;   // one resolved address
  std::uint32_t weight = 1;
};

struct Upstream {
  const config::UpstreamConfig* cfg = nullptr;
  std::size_t index = 0;
  std::vector<UpstreamTarget> targets;
  std::shared_ptr<const upstream::ConsistentHash> hash_table;
  std::shared_ptr<const tls::ClientContext> tls;  // null for plain HTTP
  // Changes when targets, weights or balance change: workers then rebuild their balancer.
  std::string fingerprint;
  // Shared with every snapshot that has the same upstream (and target): health survives reloads.
  std::vector<std::shared_ptr<upstream::TargetHealth>> health;  // by target index
  std::shared_ptr<upstream::UpstreamState> state;
  // Set for an upstream outside every snapshot (a URL call's origin, owned by one worker): the
  // series it counts in, and its balancer, which lives as long as the upstream (a call holds
  // both while it runs).
  observability::UpstreamStats* stats = nullptr;
  std::shared_ptr<upstream::LoadBalancer> balancer;
};

struct Listener {
  const config::ListenerConfig* cfg = nullptr;
  std::shared_ptr<const tls::ServerContext> tls;  // null for plain HTTP
};

struct Route {
  const config::RouteConfig* cfg = nullptr;
  const Upstream* upstream = nullptr;        // null when the route only answers locally
  FilterFactories filters;                   // global filters first, then the route's own
  const api::Consumer* anonymous = nullptr;  // who a request is when authentication fails
  // An internal route: a matcher of this route alone, for calls to it by name (its path
  // parameters, methods and conditions apply; listeners never see it).
  std::unique_ptr<router::RouteMatcher> internal_matcher;
  std::shared_ptr<const flow::Flow> flow;  // a route that composes calls (instead of upstream)
};

struct Snapshot {
  config::Config config;
  std::vector<Listener> listeners;  // in config order
  std::unique_ptr<router::RouteMatcher> matcher;
  std::vector<Route> routes;  // by route index
  std::vector<Upstream> upstreams;
  FilterFactories global_filters;  // also run (response and log phases) for unrouted requests
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  // Null when tracing is off. Process-wide: a reload with the same settings keeps it.
  std::shared_ptr<observability::Tracer> tracer;

  std::uint64_t version = 0;
  std::string hash;  // sha256 of the source text, hex
  std::chrono::system_clock::time_point loaded_at;
  // The source tree with ${ENV} values replaced; with a store, the file's own sections only
  // (the entities are the store's: Server::configDocument composes the whole).
  std::shared_ptr<const nlohmann::json> redacted;
  std::string source;  // file name

  const Upstream* findUpstream(const std::string& name) const;
  const Route* findRoute(std::string_view name) const;
  const Listener* findListener(const std::string& address) const;
  // Files besides the config whose change must reload it (certificates, keys, CAs).
  std::vector<std::string> watchedFiles() const;
};

using Resolver = std::function<Result<std::vector<SocketAddress>>(const HostPort&)>;

struct SnapshotInputs {
  std::string text;
  std::string file;
  // Set: the document, already parsed and composed (the file's sections with a store's
  // entities); `text` then only names it for the snapshot's hash (a store's revision: hashing
  // a 10,000-route document per write cost milliseconds). Its errors carry paths, not file
  // positions.
  std::shared_ptr<const nlohmann::json> document;
  // Set: receives the errors one by one (the Admin API answers them as JSON).
  std::vector<config::Diagnostic>* errors = nullptr;
  // With `document`: entity sections that live outside it (a store's entity set; the
  // document then holds the file's own sections only).
  config::ExternalSections sections;
  // Set (with `document`): routes it names are taken parsed, not parsed again.
  config::RouteReuse reuse_route;
  config::EnvLookup env;
  Resolver resolver = resolve;  // injectable, so tests can change what a name resolves to
  const api::FilterRegistry* registry = nullptr;
  api::Services* services = nullptr;
  tls::TicketKeys* ticket_keys = nullptr;      // process-wide; null = per-context keys
  upstream::HealthRegistry* health = nullptr;  // process-wide; null = fresh state per snapshot
  std::uint64_t version = 0;
};

// Every stage from text to a servable snapshot. On failure, returns the error list (one per
// line, each with its key path and file:line:col).
Result<std::shared_ptr<const Snapshot>> buildSnapshot(const SnapshotInputs& in);

// Re-resolves every target host; returns a new snapshot sharing the config when any address
// changed, or nullptr when nothing changed (or resolution failed: the old addresses stay).
std::shared_ptr<const Snapshot> refreshAddresses(const Snapshot& current, const SnapshotInputs& in);

}  // namespace portico::snapshot
