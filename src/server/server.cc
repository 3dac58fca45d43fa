#include "server/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/admin_api.h"
#include "admin/admin_reply.h"
#include "admin/admin_server.h"
#include "admin/static_assets.h"
#include "core/blocking_pool.h"
#include "core/read_file.h"
#include "core/run_loop.h"
#include "filters/builtins.h"
#include "filters/subscription/subscription_filter.h"
#include "filters/subscription/usage_book.h"
#include "http/url.h"
#include "observability/log_writer.h"
#include "observability/metrics.h"
#include "observability/stats_history.h"
#include "observability/stats_totals.h"
#include "portal/password.h"
#include "portal/portal_site.h"
#include "server/cache_admin.h"
#include "server/entity_source.h"
#include "server/health_checker.h"
#include "server/listener.h"
#include "server/scaling_advisor.h"
#include "server/stats_report.h"
#include "server/upstream_report.h"
#include "server/usage_keeper.h"
#include "server/worker.h"
#include "tls/server_context.h"

namespace portico::server {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

struct FileStamp {
  std::int64_t mtime_ns = 0;
  std::int64_t size = -1;
  std::uint64_t inode = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileStamp{
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
      static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

std::string isoTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class Server {
 public:
  explicit Server(std::string path)
      : path_(std::move(path)),
        signals_(io_, SIGHUP, SIGTERM, SIGINT),
        usr1_(io_, SIGUSR1),
        watch_timer_(io_),
        dns_timer_(io_),
        drain_timer_(io_),
        stats_timer_(io_),
        release_timer_(io_),
        usage_timer_(io_) {
    filters::registerBuiltins(registry_);
  }

  int run();

 private:
  snapshot::SnapshotInputs inputs(std::string text) {
    snapshot::SnapshotInputs in;
    in.text = std::move(text);
    in.file = path_;
    in.env = config::processEnvironment();
    in.registry = &registry_;
    in.services = &logs_;
    in.ticket_keys = &ticket_keys_;
    in.health = &health_;
    in.version = version_ + 1;
    return in;
  }
  Result<std::shared_ptr<const snapshot::Snapshot>> load(bool startup);
  // `wait`: returns once every worker serves `snap` (Admin API writes answer after that).
  bool publish(std::shared_ptr<const snapshot::Snapshot> snap, std::string* error,
               bool wait = false);
  admin::ControlHooks adminHooks();
  void reload(const std::string& why);
  void waitSignals();
  void waitReopenSignal();
  void watchFile();
  std::map<std::string, FileStamp> stampWatched() const;
  void refreshDns();
  void sampleStats();
  void tickRelease();
  void flushUsage();  // the portal's usage into the store, every store.usage_flush
  // The developer portal's listener (server.portal), when configured: "" or why it cannot.
  std::string startPortal();
  std::vector<const observability::WorkerStats*> workerStats() const;
  admin::AdminResponse dashboardAsset(const std::string& path) const;
  nlohmann::json reloadHistory() const;
  std::string statsJson() const;  // /api/stats
  void beginDrain();
  void checkDrained(std::chrono::steady_clock::time_point deadline);
  admin::AdminResponse handleAdmin(const admin::AdminRequest& request);
  void record(bool ok, const std::string& why, const std::string& detail);

  std::string path_;
  asio::io_context io_{1};
  asio::signal_set signals_;
  asio::signal_set usr1_;
  asio::steady_timer watch_timer_;
  asio::steady_timer dns_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer stats_timer_;
  asio::steady_timer release_timer_;
  asio::steady_timer usage_timer_;
  api::FilterRegistry registry_;
  observability::LogWriter logs_;
  tls::TicketKeys ticket_keys_;      // outlives every snapshot, so tickets survive reloads
  upstream::HealthRegistry health_;  // likewise target health and circuit breakers
  observability::ProcessStats process_;
  std::vector<std::unique_ptr<observability::WorkerStats>> stats_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  EntitySource source_;
  std::unique_ptr<admin::AdminApi> api_;
  std::unique_ptr<UsageKeeper> usage_keeper_;
  std::unique_ptr<portal::PortalSite> portal_;
  // The entities load() read, handed to the Admin API once published.
  store::EntitySet loaded_entities_;
  std::shared_ptr<const snapshot::Snapshot> current_;
  std::set<std::string> open_addresses_;
  FileStamp stamp_;
  std::map<std::string, FileStamp> watched_;  // certificates, keys, CAs of the live config
  std::uint64_t version_ = 0;
  bool ready_ = false;
  bool draining_ = false;
  struct ReloadEvent {
    std::string time;
    bool ok;
    std::string reason;
    std::string detail;
  };
  std::deque<ReloadEvent> history_;
  // The dashboard's charts: a point every 2 s, the last 5 minutes.
  static constexpr std::chrono::milliseconds kStatsInterval{2000};
  observability::StatsHistory traffic_{150};
  // Frees replaced snapshots off the control thread; declared after what they refer to, so it
  // finishes (joins) before those go.
  BlockingPool reaper_{1};
  // Last: they read the members above from their timers.
  HealthChecker health_checks_{io_, logs_};
  ScalingAdvisor scaling_{io_, logs_, stats_, [this] { return current_; }};
};

std::map<std::string, FileStamp> Server::stampWatched() const {
  std::map<std::string, FileStamp> out;
  if (current_) {
    for (const auto& f : current_->watchedFiles()) out[f] = stampOf(f);
  }
  return out;
}

// The Admin API on a listener others can reach, with nothing to authenticate them: refused.
std::string adminExposure(const config::AdminConfig& admin) {
  if (!admin.tokens.empty() || admin.listen.empty() || isLoopbackListen(admin.listen)) return "";
  return "server.admin.listen: " + admin.listen +
         " is not a loopback address: set server.admin.tokens (the Admin API would be open)";
}

Result<std::shared_ptr<const snapshot::Snapshot>> Server::load(bool startup) {
  stamp_ = stampOf(path_);
  auto text = readFile(path_);
  if (!text) return text.error();
  // The file compiled as it is: with store: file that is the whole config (parsed once, errors
  // with file:line:col); with a database, its own sections (and a seed) are checked by it.
  auto snap = snapshot::buildSnapshot(inputs(*text));
  if (!snap) return snap;
  if (auto problem = adminExposure((*snap)->config.server.admin); !problem.empty())
    return makeError(problem);
  const std::string now = isoTime(std::chrono::system_clock::now());
  if ((*snap)->config.store.type == config::StoreConfig::Type::File) {
    // (From the redacted tree: values that came from ${ENV} stay out of Admin API answers.)
    auto composed = source_.compose((*snap)->config.store, *(*snap)->redacted, startup);
    if (!composed) return composed.error();
    loaded_entities_ = std::move(composed->entities);
    loaded_entities_.revision = (*snap)->version;
    return snap;
  }
  config::ConfigTree tree;
  config::Diagnostics diag;
  config::parseConfigText(*text, path_, config::processEnvironment(), tree, diag);
  if (!diag.empty()) return makeError(diag.format());
  auto composed = source_.compose((*snap)->config.store, tree.root, startup);
  if (!composed) return composed.error();
  auto in = inputs(std::move(*text));
  source_.inputsFor(composed->entities, in);
  in.text += "\nstore revision " + std::to_string(composed->entities.revision);
  snap = snapshot::buildSnapshot(in);
  if (!snap) return snap;
  auto entities = source_.commitSeed(*composed, now);
  if (!entities) return entities.error();
  loaded_entities_ = std::move(*entities);
  return snap;
}

bool Server::publish(std::shared_ptr<const snapshot::Snapshot> snap, std::string* error,
                     bool wait) {
  // Open sockets for new listen addresses first: a bind error refuses the whole config.
  std::set<std::string> wanted;
  for (const auto& l : snap->config.listeners) wanted.insert(l.listen);
  std::map<std::string, std::vector<int>> fresh;
  for (const auto& address : wanted) {
    if (open_addresses_.count(address)) continue;
    for (std::size_t w = 0; w < workers_.size(); ++w) {
      auto fd = openListener(address);
      if (!fd) {
        for (auto& [_, fds] : fresh)
          for (int f : fds) ::close(f);
        *error = fd.error().message;
        return false;
      }
      fresh[address].push_back(*fd);
    }
  }
  struct Pending {
    std::mutex m;
    std::condition_variable cv;
    std::size_t left;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = workers_.size();
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    std::map<std::string, int> mine;
    for (const auto& address : wanted) {
      auto it = fresh.find(address);
      mine[address] = it == fresh.end() ? -1 : it->second[w];
    }
    std::function<void()> installed;
    if (wait)
      installed = [pending] {
        std::lock_guard lock(pending->m);
        if (--pending->left == 0) pending->cv.notify_all();
      };
    workers_[w]->install(snap, std::move(mine), std::move(installed));
  }
  if (wait) {
    // Workers swap a pointer: microseconds unless one is stuck in a long handler.
    std::unique_lock lock(pending->m);
    if (!pending->cv.wait_for(lock, std::chrono::seconds(5), [&] { return pending->left == 0; }))
      spdlog::warn("a worker took over 5 s to take config version {}", snap->version);
  }
  open_addresses_ = std::move(wanted);
  // The old snapshot is freed on a thread of its own: with 10,000 routes its destruction took
  // tens of milliseconds, which an Admin API write (or the next one) would wait for.
  reaper_.post([old = std::exchange(current_, std::move(snap))] {});
  health_checks_.update(*current_);
  watched_ = stampWatched();
  version_ = current_->version;
  process_.config_version = version_;
  process_.consumers_top = current_->config.server.metrics_consumers_top;
  return true;
}

void Server::record(bool ok, const std::string& why, const std::string& detail) {
  history_.push_back({isoTime(std::chrono::system_clock::now()), ok, why, detail});
  while (history_.size() > 20) history_.pop_front();
}

void Server::reload(const std::string& why) {
  if (draining_) return;
  auto snap = load(false);
  std::string error;
  if (snap && publish(*snap, &error)) {
    if (api_) {
      // A candidate was compiled with the file as it was: it is not released with another.
      api_->abortRelease("the config file was reloaded (" + why + ")");
      api_->setEntities(std::move(loaded_entities_));
      api_->setAdmin(current_->config.server.admin);
      api_->setRollout(current_->config.server.rollout);
    }
    ++process_.config_reloads;
    spdlog::info("config reloaded ({}): version {}, {} routes", why, version_,
                 current_->config.routes.size());
    record(true, why, "");
    return;
  }
  if (!snap) error = snap.error().message;
  ++process_.config_reload_failures;
  spdlog::error("config reload ({}) refused, version {} keeps serving:\n{}", why, version_, error);
  record(false, why, error);
}

void Server::waitSignals() {
  signals_.async_wait([this](error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload("SIGHUP");
      waitSignals();
    } else {
      beginDrain();
    }
  });
  waitReopenSignal();
}

void Server::waitReopenSignal() {
  usr1_.async_wait([this](error_code ec, int) {
    if (ec) return;
    logs_.reopenAll();
    spdlog::info("log files reopened (SIGUSR1)");
    waitReopenSignal();
  });
}

void Server::watchFile() {
  watch_timer_.expires_after(std::chrono::seconds(1));
  watch_timer_.async_wait([this](error_code ec) {
    if (ec || draining_) return;
    if (current_->config.server.watch_config) {
      FileStamp now = stampOf(path_);
      if (!(now == stamp_) && now.size >= 0) {
        reload("file changed");
      } else if (auto files = stampWatched(); files != watched_) {
        watched_ = files;  // a refused reload is not retried until the files change again
        reload("certificate or descriptor changed");
      }
    }
    process_.log_lines_dropped = logs_.droppedLines();
    watchFile();
  });
}

void Server::refreshDns() {
  auto every = current_->config.server.dns_refresh;
  if (every.count() <= 0) every = std::chrono::seconds(30);
  dns_timer_.expires_after(every);
  dns_timer_.async_wait([this](error_code ec) {
    if (ec || draining_) return;
    const bool database = source_.database();
    auto text = database ? Result<std::string>(std::string()) : readFile(path_);
    if (text) {
      auto in = inputs(std::move(*text));
      if (database) source_.inputsFor(api_->entities(), in);
      if (auto fresh = snapshot::refreshAddresses(*current_, in)) {
        std::string error;
        if (publish(fresh, &error)) {
          ++process_.config_reloads;
          record(true, "DNS change", "");
          spdlog::info("upstream addresses changed; version {}", version_);
        }
      }
    }
    refreshDns();
  });
}

void Server::beginDrain() {
  if (draining_) return;
  draining_ = true;
  spdlog::info("draining: no new connections, in-flight requests finish");
  for (auto& w : workers_) w->drain();
  checkDrained(std::chrono::steady_clock::now() + current_->config.server.drain_timeout);
}

void Server::checkDrained(std::chrono::steady_clock::time_point deadline) {
  std::uint64_t active = 0;
  for (const auto& s : stats_) active += s->connections_active.get();
  if (active == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (active) spdlog::warn("drain timeout: closing {} connections", active);
    io_.stop();
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(20));
  drain_timer_.async_wait([this, deadline](error_code ec) {
    if (!ec) checkDrained(deadline);
  });
}

admin::AdminResponse Server::handleAdmin(const admin::AdminRequest& request) {
  const std::string& method = request.method;
  const std::string& path = request.path;
  const std::string& accept = request.accept;
  admin::AdminResponse r;
  if (api_ && api_->handles(path)) return api_->handle(request);
  if (path == "/cache/purge") {
    if (method != "POST")
      return {405,
              "application/json",
              R"({"error":"method not allowed","status":405})",
              {{"Allow", "POST"}}};
    return purgeCache(logs_, request.body, current_->config.server.admin.listen);
  }
  if (method != "GET" && method != "HEAD") {
    return {405, "application/json", R"({"error":"method not allowed","status":405})", {}};
  }
  if (path == "/healthz") {
    r.body = R"({"status":"ok"})";
  } else if (path == "/readyz") {
    bool ok = ready_ && !draining_;
    r.status = ok ? 200 : 503;
    // Serving from the store's cache (etcd down at start): still ready, and says so.
    r.body = ok ? (source_.stale() ? R"({"status":"stale config"})" : R"({"status":"ready"})")
                : (draining_ ? R"({"status":"draining"})" : R"({"status":"starting"})");
  } else if (path == "/config") {
    nlohmann::json j;
    j["version"] = current_->version;
    j["hash"] = current_->hash;
    j["loaded_at"] = isoTime(current_->loaded_at);
    j["source"] = current_->source;
    j["config"] = admin::redactCredentials(
        source_.database() ? source_.documentWith(api_->entities()) : *current_->redacted);
    j["reloads"] = reloadHistory();
    r.body = j.dump(2);
  } else if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = observability::renderPrometheus(observability::sumWorkers(workerStats()), process_);
    appendUpstreamMetrics(*current_, r.body);
    appendCacheMetrics(logs_, r.body);
    scaling_.appendMetrics(r.body);
    if (api_) api_->appendReleaseMetrics(r.body);
    if (accept.find("application/openmetrics-text") != std::string::npos) {
      r.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
      r.body = observability::toOpenMetrics(r.body);
    }
  } else if (path == "/upstreams") {
    r.body = upstreamsReport(*current_).dump(2);
  } else if (!current_->config.server.admin.dashboard) {
    r.status = 404;
    r.body = R"({"error":"not found","status":404})";
  } else if (path == "/api/stats") {
    r.body = statsJson();
    r.headers.emplace_back("Cache-Control", "no-store");
  } else if (path.rfind("/api/stats/routes/", 0) == 0) {
    auto j = routeHistory(*current_, traffic_, http::decodePathComponent(path.substr(18)));
    if (j.is_null())
      return {404, "application/json", R"({"error":"no such route","status":404})", {}};
    r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    r.headers.emplace_back("Cache-Control", "no-store");
  } else if (path == "/dashboard" || path.rfind("/dashboard/", 0) == 0) {
    return dashboardAsset(path);
  } else {
    r.status = 404;
    r.body = R"({"error":"not found","status":404})";
  }
  return r;
}

std::vector<const observability::WorkerStats*> Server::workerStats() const {
  std::vector<const observability::WorkerStats*> ws;
  for (const auto& s : stats_) ws.push_back(s.get());
  return ws;
}

std::string Server::statsJson() const {
  StatsReportInputs in;
  in.snapshot = current_.get();
  const auto totals = liveTotals(observability::sumWorkers(workerStats()), *current_);
  in.totals = &totals;
  in.history = &traffic_;
  in.process = &process_;
  for (const auto& s : stats_) {
    auto errors = s->recent_errors.list();
    in.errors.insert(in.errors.end(), errors.begin(), errors.end());
  }
  in.reloads = reloadHistory();
  in.workers = workers_.size();
  in.interval_ms = kStatsInterval.count();
  // Request paths are client bytes: invalid UTF-8 is replaced, not thrown on.
  return statsReport(in).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json Server::reloadHistory() const {
  nlohmann::json h = nlohmann::json::array();
  for (const auto& e : history_)
    h.push_back({{"time", e.time}, {"ok", e.ok}, {"reason", e.reason}, {"error", e.detail}});
  return h;
}

admin::AdminResponse Server::dashboardAsset(const std::string& path) const {
  if (path == "/dashboard") return {301, "text/plain", "", {{"Location", "/dashboard/"}}};
  std::string name = path.substr(std::string("/dashboard/").size());
  if (name.empty()) name = "index.html";
  for (const auto& asset : admin::dashboardAssets()) {
    if (asset.path != name) continue;
    admin::AdminResponse r{200, std::string(asset.content_type), std::string(asset.body), {}};
    // Everything the page loads comes from this listener.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  return {404, "application/json", R"({"error":"not found","status":404})", {}};
}

std::string Server::startPortal() {
  const auto& cfg = current_->config.server.portal;
  if (!cfg) return "";
  portal::PortalHooks hooks;
  hooks.write = [this](std::vector<store::Change> changes, const std::string& actor,
                       const std::string& what) {
    return api_->applyChanges(std::move(changes), actor, what);
  };
  hooks.entities = [this]() -> const store::EntitySet& { return api_->entities(); };
  hooks.now = [] { return std::chrono::steady_clock::now(); };
  hooks.utc_now = [] { return isoTime(std::chrono::system_clock::now()); };
  hooks.random = [](std::size_t n) {
    std::string out(n, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
    return out;
  };
  hooks.usage = [this](const std::string& application, int days) {
    return usage_keeper_->report(application, days, std::chrono::system_clock::now());
  };
  hooks.hash_password = portal::hashPassword;
  hooks.check_password = portal::checkPassword;
  portal_ = std::make_unique<portal::PortalSite>(io_, *cfg, std::move(hooks), logs_);
  std::shared_ptr<const tls::ServerContext> tls;
  if (cfg->tls) {
    auto context = tls::ServerContext::build(*cfg->tls, &ticket_keys_);
    if (!context) return "server.portal.tls: " + context.error().message;
    tls = *context;
  }
  if (auto error = portal_->listen(tls); !error.empty()) return error;
  spdlog::info("developer portal on {}{}", cfg->tls ? "https://" : "http://", cfg->listen);
  return "";
}

void Server::tickRelease() {
  if (api_ && !draining_) api_->tickRelease();
  release_timer_.expires_after(std::chrono::milliseconds(250));
  release_timer_.async_wait([this](error_code ec) {
    if (!ec) tickRelease();
  });
}

void Server::flushUsage() {
  if (const auto error = usage_keeper_->flush(std::chrono::system_clock::now()); !error.empty())
    spdlog::warn("portal usage: the store refused it (tried again later): {}", error);
  usage_timer_.expires_after(current_->config.store.usage_flush);
  usage_timer_.async_wait([this](error_code ec) {
    if (!ec) flushUsage();
  });
}

void Server::sampleStats() {
  // The first sample (at startup) is the baseline the first interval's traffic is counted from.
  if (current_->config.server.admin.dashboard) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    traffic_.sample(liveTotals(observability::sumWorkers(workerStats()), *current_), now.count());
  }
  stats_timer_.expires_after(kStatsInterval);
  stats_timer_.async_wait([this](error_code ec) {
    if (!ec) sampleStats();
  });
}

admin::ControlHooks Server::adminHooks() {
  struct Prepared {
    std::shared_ptr<const snapshot::Snapshot> snapshot;
  };
  admin::ControlHooks hooks;
  hooks.now = [] { return isoTime(std::chrono::system_clock::now()); };
  hooks.compile = [this](const store::EntitySet& candidate,
                         const std::vector<store::Change>& changes,
                         std::shared_ptr<const void>& prepared) {
    auto in = inputs("store revision " + std::to_string(candidate.revision));
    source_.inputsFor(candidate, in);
    // Routes the write does not touch are taken parsed from the snapshot now served (a write
    // to one of 10,000 routes parses one). current_ came from the same entities: a store's
    // document or the file that seeded it. The entities keep their order, so the served route
    // at the cursor is nearly always the one asked for; a name index is built only on a miss.
    const auto& served = current_->config.routes;
    std::vector<std::string_view> changed;
    for (const auto& c : changes)
      if (c.kind == store::Kind::Routes) changed.push_back(c.name);
    std::size_t cursor = 0;
    std::unordered_map<std::string_view, std::size_t> by_name;
    in.reuse_route =
        [&, database = source_.database()](const std::string& name) -> const config::RouteConfig* {
      if (!database || std::find(changed.begin(), changed.end(), name) != changed.end())
        return nullptr;
      if (cursor >= served.size() || served[cursor].name != name) {
        if (by_name.empty())
          for (std::size_t i = 0; i < served.size(); ++i) by_name.emplace(served[i].name, i);
        const auto it = by_name.find(name);
        if (it == by_name.end()) return nullptr;
        cursor = it->second;
      }
      return &served[cursor++];
    };
    std::vector<config::Diagnostic> errors;
    in.errors = &errors;
    auto snap = snapshot::buildSnapshot(in);
    std::vector<admin::FieldError> out;
    if (snap) {
      prepared = std::make_shared<const Prepared>(Prepared{*snap});
      return out;
    }
    for (const auto& e : errors) out.push_back({admin::jsonPointerOf(e.path), e.message});
    if (out.empty()) out.push_back({"", snap.error().message});
    return out;
  };
  hooks.serve_candidate = [this](std::shared_ptr<const void> prepared, int percent) {
    std::shared_ptr<const snapshot::Snapshot> candidate;
    if (prepared) candidate = std::static_pointer_cast<const Prepared>(prepared)->snapshot;
    for (auto& w : workers_) w->installCandidate(candidate, percent);
  };
  hooks.release_totals = [this] {
    std::array<observability::ReleaseTotals, 2> totals{};
    for (const auto& s : stats_)
      for (std::size_t side = 0; side < totals.size(); ++side)
        totals[side].add(s->release_sides[side]);
    return totals;
  };
  hooks.steady_now = [] { return std::chrono::steady_clock::now(); };
  hooks.publish = [this](std::shared_ptr<const void> prepared) {
    auto p = std::static_pointer_cast<const Prepared>(prepared);
    std::string error;
    if (!publish(p->snapshot, &error, true)) {
      spdlog::error("Admin API write stored but not served: {}", error);
      return;
    }
    ++process_.config_reloads;
    record(true, "Admin API", "");
    source_.saveCache(api_->entities());
  };
  return hooks;
}

int Server::run() {
  auto snap = load(true);
  if (!snap) {
    std::cerr << "portico: invalid config " << path_ << ":\n" << snap.error().message;
    return 1;
  }
  int n = (*snap)->config.server.workers;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) {
    stats_.push_back(std::make_unique<observability::WorkerStats>());
    workers_.push_back(std::make_unique<Worker>(i, *stats_.back()));
  }
  admin_ = std::make_unique<admin::AdminServer>(
      io_, [this](const admin::AdminRequest& request) { return handleAdmin(request); });
  const auto& admin_cfg = (*snap)->config.server.admin;
  std::shared_ptr<const tls::ServerContext> admin_tls;
  if (admin_cfg.tls) {
    auto context = tls::ServerContext::build(*admin_cfg.tls, &ticket_keys_);
    if (!context) {
      std::cerr << "portico: server.admin.tls: " << context.error().message << "\n";
      return 1;
    }
    admin_tls = *context;
  }
  const std::string& admin_listen = admin_cfg.listen;
  if (auto ok = admin_listen.empty() ? Result<bool>(true) : admin_->listen(admin_listen, admin_tls);
      !ok) {
    std::cerr << "portico: " << ok.error().message << "\n";
    return 1;
  }
  std::string error;
  if (!publish(*snap, &error)) {
    std::cerr << "portico: " << error << "\n";
    return 1;
  }
  api_ = std::make_unique<admin::AdminApi>(source_.store(), adminHooks());
  api_->setEntities(std::move(loaded_entities_));
  api_->setAdmin(current_->config.server.admin);
  api_->setRollout(current_->config.server.rollout);
  if (!source_.stale()) source_.saveCache(api_->entities());
  source_.store().announce(api_->self());
  api_->joinReleases();
  // The workers' subscription filters record into the process's usage book (Services::shared:
  // the one the snapshots' filters hold); kept in the store when the store keeps usage.
  usage_keeper_ =
      std::make_unique<UsageKeeper>(std::static_pointer_cast<filters::UsageBook>(logs_.shared(
                                        std::string(filters::kUsageBookKey),
                                        [] { return std::make_shared<filters::UsageBook>(); })),
                                    source_.store());
  if (const auto problem = startPortal(); !problem.empty()) {
    std::cerr << "portico: " << problem << "\n";
    return 1;
  }
  // Other nodes' writes (etcd): one watch per node, its updates applied on this thread. A
  // watch that works again after starting from the cache ends the stale state.
  source_.store().watch(api_->entities().revision, [this](store::StoreUpdate update) {
    asio::post(io_, [this, update = std::move(update)] {
      if (!api_ || draining_) return;
      api_->applyFromStore(update);
      if (update.error.empty() && source_.stale()) {
        source_.caughtUp();
        spdlog::info("store: reachable again; caught up from the cache's revision");
      }
    });
  });
  // From here only current_ and the workers hold the first snapshot: a reload frees it (and
  // whatever it alone used).
  snap->reset();
  for (auto& w : workers_) w->start();
  record(true, "startup", "");
  ready_ = true;
  spdlog::info("portico serving version {} with {} workers; admin on {}", version_, n,
               current_->config.server.admin.listen);
  waitSignals();
  watchFile();
  refreshDns();
  sampleStats();
  tickRelease();
  if (source_.store().keepsUsage()) flushUsage();
  runLoop(io_, "control thread");
  admin_->stop();
  if (portal_) portal_->stop();
  for (auto& w : workers_) w->stop();
  workers_.clear();
  usage_keeper_->flush(std::chrono::system_clock::now());  // what the last requests added
  logs_.flushAll();
  spdlog::info("portico stopped");
  return 0;
}

}  // namespace

int run(const std::string& config_path) {
  std::signal(SIGPIPE, SIG_IGN);
  Server server(config_path);
  return server.run();
}

}  // namespace portico::server
