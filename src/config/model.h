#pragma once
// The configuration model: plain structs with their defaults, filled from the config tree by
// model_parser and checked by the validator. Documented key by key in docs/config.md.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/units.h"

namespace portico::config {

// Labels on an entity: selection only (Admin API filters, pruning).
using Labels = std::map<std::string, std::string>;

using namespace std::chrono_literals;

struct Limits {
  std::uint64_t max_header_bytes = 64 * 1024;
  std::uint32_t max_headers = 100;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
  std::uint64_t max_uri_bytes = 8 * 1024;
  Duration header_timeout = 10s;
  Duration idle_timeout = 60s;
  std::uint32_t max_connections = 10000;     // per worker
  std::uint32_t max_calls_per_request = 64;  // upstream calls of one request running at once
};

struct CertificateConfig {
  std::string cert;  // PEM file: the certificate, then any intermediates
  std::string key;   // PEM file: the private key
};

struct ClientAuthConfig {
  std::string ca;  // PEM file of the CAs that may sign client certificates
  enum class Mode { Required, Optional };
  Mode mode = Mode::Required;
  std::string subject_header;  // when set, the verified subject is sent upstream in it
  std::string san_header;      // when set, the verified SANs (comma-separated) likewise
};

struct TlsConfig {
  std::vector<CertificateConfig> certificates;  // the first one is the default
  std::string min_version = "1.2";              // "1.2" or "1.3"
  std::string ciphers;       // TLS 1.2 cipher list (OpenSSL syntax); empty = OpenSSL's default
  std::string ciphersuites;  // TLS 1.3 suites; empty = OpenSSL's default
  std::optional<ClientAuthConfig> client_auth;
  bool offer_h2 = true;  // ALPN offers h2 (from the listener's http2.enabled, not a key here)
};

// A bearer token for /admin/v1: kept as its SHA-256 only.
struct AdminToken {
  std::string name;
  std::string sha256;  // hex
  bool write = false;  // scope: write (else read)
};

struct AdminConfig {
  std::string listen = "127.0.0.1:9901";
  bool dashboard = true;  // /dashboard/ and /api/stats
  std::vector<AdminToken> tokens;
  std::optional<TlsConfig> tls;  // HTTPS on the admin listener (client_auth: mTLS); start only
};

// OpenTelemetry tracing: spans exported as OTLP/HTTP JSON to `endpoint`.
struct TracingConfig {
  std::string endpoint;    // e.g. http://collector:4318/v1/traces
  double sampling = 0.01;  // ratio of new traces kept; a sampled parent is always followed
  std::string service_name = "portico";
  std::uint32_t batch_size = 512;
  std::uint32_t queue_size = 4096;  // spans waiting for export; past it they are dropped
  Duration flush_interval = 1s;
};

// Config releases (ADR 0014): an apply with ?rollout=true serves the candidate to a growing
// share of requests, step by step, while its figures stay within the guard against the stable
// config's over the same interval.
struct RolloutConfig {
  std::vector<int> steps{5, 25, 100};  // percent of requests on the candidate, ascending, to 100
  Duration interval = 30s;
  double max_5xx_ratio_increase = 0.01;  // candidate's 5xx ratio minus the stable one's
  double max_p99_ratio = 1.3;            // candidate's p99 over the stable one's
  std::uint64_t min_requests = 200;      // on the candidate before an interval is judged
};

// The developer portal's listener (docs/portal.md, ADR 0015).
struct PortalConfig {
  std::string listen;  // host:port
  std::optional<TlsConfig> tls;
  std::string title = "APIs";
  enum class Signup { Open, Invite, Closed };
  Signup signup = Signup::Open;
  std::string gateway_url;  // shown in docs and examples
  Duration session_idle = 30min;
  // Sign-in with an OpenID Connect provider (authorization code + PKCE).
  struct Oidc {
    std::string issuer;  // its discovery document is <issuer>/.well-known/openid-configuration
    std::string client_id;
    std::string client_secret;  // "" = a public client (PKCE only)
    // Where the provider sends the browser back; "" = <scheme>://<Host>/portal/oidc/callback.
    std::string redirect_uri;
    std::vector<std::string> scopes{"openid", "email"};
    std::string ca;  // https: trust anchors for the provider ("" = the system's)
  };
  std::optional<Oidc> oidc;
};

struct ServerConfig {
  int workers = 0;  // 0 = auto: one per core
  std::optional<TracingConfig> tracing;
  // Per-consumer series on /metrics: the N consumers with most requests, the rest as "other"
  // (0 = off).
  std::uint32_t metrics_consumers_top = 0;
  AdminConfig admin;
  Limits limits;
  Duration drain_timeout = 30s;
  Duration dns_refresh = 30s;
  bool watch_config = true;  // reload when the file changes
  RolloutConfig rollout;
  std::optional<PortalConfig> portal;
};

// HTTP/2 on a listener: h2 by ALPN on TLS listeners, h2c with prior knowledge on plain ones.
struct Http2Config {
  bool enabled = true;
  std::uint32_t max_concurrent_streams = 128;
  std::uint32_t initial_window = 256 * 1024;      // per stream, bytes
  std::uint32_t connection_window = 1024 * 1024;  // per connection, bytes
  std::uint32_t max_frame_size = 16384;
  std::uint32_t max_header_list_bytes = 64 * 1024;
  std::uint32_t max_resets_per_second = 100;  // rapid reset (CVE-2023-44487) past this: GOAWAY
};

struct ListenerConfig {
  std::string name;
  std::string listen;
  std::optional<TlsConfig> tls;
  Http2Config http2;
};

struct TargetConfig {
  std::string address;  // host:port
  std::uint32_t weight = 1;
};

enum class Balance { RoundRobin, LeastRequest, ConsistentHash, Random };

struct HashConfig {
  enum class On { Header, Cookie, ClientIp, Path };
  On on = On::ClientIp;
  std::string name;  // header or cookie name
  enum class Algorithm { Ring, Maglev };
  Algorithm algorithm = Algorithm::Ring;
};

struct UpstreamTimeouts {
  Duration connect = 5s;
  Duration read = 30s;   // longest gap between two bytes from the upstream
  Duration total = 0ms;  // whole request including retries; 0 = none
};

struct RetryConfig {
  std::uint32_t attempts = 2;  // tries in total, the first included
  std::vector<int> on_statuses;
  Duration backoff_base = 25ms;
  Duration backoff_max = 250ms;
};

struct PoolConfig {
  std::uint32_t max_idle = 64;  // per worker and target
  Duration idle_timeout = 60s;
};

struct UpstreamTlsConfig {
  std::string ca;           // PEM trust anchors; empty = the system's
  std::string server_name;  // SNI and the name to verify; empty = the target's host
  bool verify = true;
  std::string client_cert;  // mTLS to the backend
  std::string client_key;
  bool alpn_h2 = false;  // offer only h2 by ALPN (from the upstream's protocol, not a key here)
};

// Where routes, upstreams, consumers, global plugins, apis and plans live (store/entity_store.h).
struct StoreConfig {
  enum class Type { File, Sqlite, Etcd };
  Type type = Type::File;
  std::string path;                    // sqlite: the database file
  std::vector<std::string> endpoints;  // etcd: http://host:port, tried in order
  std::string prefix = "/portico";     // etcd: keys <prefix>/<kind>/<name>
  std::string cache;  // etcd: the last applied entities, for starting while etcd is down
  std::string username, password;        // etcd: authentication (both, or neither)
  std::optional<UpstreamTlsConfig> tls;  // etcd over https: ca, cert, key (client certificate)
  Duration usage_flush = 1min;           // sqlite, etcd: how often the portal's usage is written
};

// Active health checks: a probe per target, off the request path.
struct HealthCheckConfig {
  std::string path = "/";
  std::string host;  // Host header of the probe; empty = the target as configured
  Duration interval = 5s;
  Duration timeout = 1s;
  std::uint32_t healthy_threshold = 2;    // successes in a row to come back
  std::uint32_t unhealthy_threshold = 3;  // failures in a row to stop traffic
  std::vector<int> expected_statuses;     // empty = any 2xx or 3xx
};

// Passive checks: consecutive failures of real requests eject a target for a while.
struct OutlierConfig {
  std::uint32_t consecutive_failures = 5;  // 5xx answers, connect failures, timeouts
  Duration base_ejection = 30s;            // doubled on each ejection in a row
  Duration max_ejection = 300s;
};

// Thresholds (0 = unlimited) and a closed/open/half-open state machine.
struct CircuitBreakerConfig {
  std::uint32_t max_connections = 0;     // open connections to the upstream, all workers
  std::uint32_t max_pending = 0;         // requests waiting for a new connection
  std::uint32_t max_requests = 0;        // requests in flight
  std::uint32_t max_retries = 0;         // retries in flight
  std::uint32_t failure_threshold = 0;   // failed requests in a row that open it (0 = never)
  Duration open_duration = 10s;          // then half-open
  std::uint32_t half_open_requests = 1;  // probes let through while half-open
};

// Retries may add at most `percent` of the requests in flight (at least `min_concurrent`).
struct RetryBudgetConfig {
  double percent = 20.0;
  std::uint32_t min_concurrent = 3;
};

// Scaling signals: a recommended replica count from what the gateway sees of the upstream.
struct ScalingConfig {
  std::uint32_t target_in_flight = 0;  // per replica (0 = not used)
  std::uint32_t target_rps = 0;        // requests per second per replica (0 = not used)
  std::uint32_t min_replicas = 1;
  std::uint32_t max_replicas = 100;
  Duration interval = 10s;  // evaluation period (in-flight is sampled every 100 ms within it)
  Duration cooldown = 60s;  // least time between two changes of the recommendation
  std::uint32_t tolerance_percent = 10;  // changes smaller than this are ignored
  std::string webhook;                   // URL that gets a POST per change; empty = none
  Duration webhook_timeout = 2s;
  std::uint32_t webhook_retries = 3;
};

// How Portico talks to an upstream's targets.
enum class UpstreamProtocol { Http1, H2, H2c };

struct UpstreamConfig {
  std::string name;
  std::vector<TargetConfig> targets;
  Balance balance = Balance::RoundRobin;
  HashConfig hash;
  UpstreamTimeouts timeouts;
  RetryConfig retries;
  PoolConfig pool;
  std::optional<UpstreamTlsConfig> tls;
  UpstreamProtocol protocol = UpstreamProtocol::Http1;
  std::optional<HealthCheckConfig> health_check;
  std::optional<OutlierConfig> outlier_detection;
  std::optional<CircuitBreakerConfig> circuit_breaker;
  std::optional<RetryBudgetConfig> retry_budget;
  std::optional<ScalingConfig> scaling;
  Labels labels;
  std::string path;  // config path for messages, e.g. "upstreams[0]"
};

struct ValueMatch {
  std::string name;
  std::optional<std::string> exact;
  std::optional<std::string> regex;
  bool present = true;  // false: matches when the header/param is absent
};

struct RouteMatch {
  std::vector<std::string> hosts;
  std::optional<std::string> path;
  std::optional<std::string> path_prefix;
  std::optional<std::string> path_regex;
  std::vector<std::string> methods;
  std::vector<ValueMatch> headers;
  std::vector<ValueMatch> query;
};

struct PluginConfig {
  std::string name;
  nlohmann::json config;  // validated by the filter's own factory
  Labels labels;
  std::string path;  // config path of this entry, for messages
};

// What every proxied request reads comes first, up to websocket_max_duration: two cache lines
// where a request to one of 1,000 routes finds its route cold (issue 17's spread scale row).
struct RouteConfig {
  std::string name;
  bool strip_prefix = false;
  bool preserve_host = true;  // false: Host becomes the target's host:port as configured
  // Unreachable from listeners (404, as if absent); reachable by name from upstream calls
  // (CallRequest::route, flows' `route:`), in process, with its own plugins.
  bool internal = false;
  // Several auth filters on a route: `any` lets a request through when one accepts it, `all`
  // only when every one does.
  enum class AuthMode { Any, All };
  AuthMode auth_mode = AuthMode::Any;
  std::optional<std::string> rewrite;  // path template, may use {param} captures
  Duration websocket_idle_timeout{0};  // 0 = server.limits.idle_timeout
  Duration websocket_max_duration{0};  // 0 = none
  RouteMatch match;
  int priority = 0;
  std::string upstream;
  // A flow (calls composed into one answer) instead of an upstream; compiled with the snapshot
  // (flow/flow.h), since it names upstreams and internal routes.
  std::optional<nlohmann::json> flow;
  std::vector<PluginConfig> plugins;
  std::string anonymous;  // consumer a request becomes when authentication fails; "" = none
  std::string api;        // the published API it belongs to ("" = none)
  Labels labels;
  std::string path;
};

struct ConsumerConfig {
  std::string name;
  std::optional<std::string> custom_id;
  std::vector<std::string> groups;
  nlohmann::json credentials;  // per auth method; checked when the snapshot is built
  Labels labels;
  std::string path;
};

// A published API (docs/apis.md): a name and version over a base path, with a lifecycle state
// that decides how its routes answer.
struct ApiConfig {
  enum class State { Draft, Published, Deprecated, Retired };
  std::string name;
  std::string version;
  std::string base_path = "/";
  State state = State::Published;
  std::optional<std::int64_t> sunset;         // unix seconds (RFC 8594 Sunset)
  std::optional<std::int64_t> deprecated_at;  // unix seconds (RFC 9745 Deprecation)
  std::string docs;                           // Link rel="deprecation"
  nlohmann::json openapi;                     // {file: …} or the spec itself (kept, served)
  Labels labels;
  std::string path;
};

// Headers that carry the authenticated consumer upstream ("" = not sent). Whatever a client
// sends under these names is removed first.
struct ConsumerHeaders {
  std::string name = "X-Consumer-Name";
  std::string groups = "X-Consumer-Groups";
  std::string custom_id = "X-Consumer-Custom-Id";
  std::string anonymous = "X-Anonymous-Consumer";
};

// A plan of the developer portal (docs/portal.md, ADR 0015): the APIs it opens to the
// applications subscribed under it, with their limits and quota.
struct PlanConfig {
  struct Limit {
    std::uint64_t requests = 0;
    Duration per{0};
  };
  struct Quota {
    std::uint64_t requests = 0;
    std::string per;  // hour | day | month (calendar periods, UTC)
  };
  std::string name;
  std::vector<std::string> apis;
  std::vector<Limit> limits;  // every one must admit a request (rate-limit's shape)
  std::optional<Quota> quota;
  enum class Approval { Auto, Manual };
  Approval approval = Approval::Auto;
  // Where the limits and quota count, as rate-limit's keys `backend`, `redis` and
  // `on_backend_failure` (kept raw; the filters check them): local when empty.
  nlohmann::json counters = nlohmann::json::object();
  Labels labels;
  std::string path;
};

// An application's (a consumer's) subscription to an API under a plan (ADR 0015): made by the
// developer portal or an operator; `pending` until approved when the plan says manual.
struct SubscriptionConfig {
  enum class State { Active, Pending, Rejected };
  std::string name;         // its id
  std::string application;  // a consumer's name
  std::string api;
  std::string plan;
  State state = State::Active;
  Labels labels;
  std::string path;
};

// A developer-portal account (ADR 0015): named by its email, a crypt(3) password hash.
struct AccountConfig {
  std::string name;  // the email, lower-cased
  std::string password_hash;
  bool invited = false;      // an operator's invitation: signing up sets the password
  std::string oidc_subject;  // made or linked by OpenID Connect sign-in: the provider's `sub`
  Labels labels;
  std::string path;
};

struct Config {
  int version = 1;
  ServerConfig server;
  std::vector<ListenerConfig> listeners;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  std::vector<PluginConfig> plugins;  // global, run before route plugins
  std::vector<ConsumerConfig> consumers;
  std::vector<ApiConfig> apis;
  std::vector<PlanConfig> plans;
  std::vector<SubscriptionConfig> subscriptions;
  std::vector<AccountConfig> accounts;
  ConsumerHeaders consumer_headers;
  StoreConfig store;
};

}  // namespace portico::config
