#include "store/etcd_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "core/base64.h"
#include "core/json_field.h"
#include "store/etcd_client.h"
#include "tls/client_context.h"

namespace portico::store {

std::string etcdEntityKey(const std::string& prefix, Kind kind, const std::string& name) {
  return prefix + "/" + std::string(kindName(kind)) + "/" + name;
}

bool parseEtcdEntityKey(const std::string& prefix, std::string_view key, Kind& kind,
                        std::string& name) {
  if (key.size() <= prefix.size() + 1 || key.compare(0, prefix.size(), prefix) != 0 ||
      key[prefix.size()] != '/')
    return false;
  key.remove_prefix(prefix.size() + 1);
  const auto slash = key.find('/');
  if (slash == std::string_view::npos || slash + 1 == key.size()) return false;
  const auto k = kindFromName(key.substr(0, slash));
  if (!k) return false;
  kind = *k;
  name = std::string(key.substr(slash + 1));
  return true;
}

namespace {

std::uint64_t number(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_string()) return std::strtoull(it->get_ref<const std::string&>().c_str(), nullptr, 10);
  return it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string decoded(const nlohmann::json& kv, const char* key) {
  std::string out;
  const auto it = kv.find(key);
  if (it != kv.end() && it->is_string()) base64Decode(it->get_ref<const std::string&>(), out);
  return out;
}

// A range request over every key under `prefix` (more fields may be added).
nlohmann::json prefixRange(const std::string& prefix) {
  return {{"key", etcdKey(prefix)}, {"range_end", etcdKey(etcdPrefixEnd(prefix))}};
}

// The values of a range answer that are JSON objects (others are skipped).
std::vector<nlohmann::json> objectValues(const nlohmann::json& answer) {
  std::vector<nlohmann::json> out;
  for (const auto& kv : arrayField(answer, "kvs")) {
    auto v = nlohmann::json::parse(decoded(kv, "value"), nullptr, false);
    if (v.is_object()) out.push_back(std::move(v));
  }
  return out;
}

class EtcdStore final : public EntityStore {
 public:
  explicit EtcdStore(const EtcdSettings& s)
      : settings_(s),
        client_(s.endpoints, s.timeout, s.tls),
        watch_client_(s.endpoints, s.timeout, s.tls) {
    if (!s.username.empty()) {
      client_.setCredentials(s.username, s.password);
      watch_client_.setCredentials(s.username, s.password);
    }
  }
  ~EtcdStore() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    watch_client_.shutdown();
    if (watcher_.joinable()) watcher_.join();
    if (heart_.joinable()) heart_.join();
  }

  std::string_view type() const override { return "etcd"; }
  bool writable() const override { return true; }

  Result<EntitySet> load() override {
    const std::string prefix = settings_.prefix + "/";
    auto answer = client_.call("/v3/kv/range", prefixRange(prefix));
    if (!answer) return answer.error();
    EntitySet set;
    std::lock_guard lock(mutex_);
    created_.clear();
    for (const auto& kv : arrayField(*answer, "kvs")) {
      Kind kind;
      std::string name;
      const std::string key = decoded(kv, "key");
      if (!parseEtcdEntityKey(settings_.prefix, key, kind, name)) continue;  // nodes, releases
      auto entity = entityOf(key, name, decoded(kv, "value"), number(kv, "mod_revision"));
      if (!entity) continue;
      created_[key] = entity->created_at;
      set.put(kind, std::move(*entity));
    }
    set.revision = number(objectField(*answer, "header"), "revision");
    return set;
  }

  // `base` is not compared: each changed key's mod_revision is (Change::base_revision, the one
  // the writer saw), so writes to other objects on other nodes never conflict with this one.
  Result<std::uint64_t> commit(std::uint64_t, const std::vector<Change>& changes,
                               const std::string& now) override {
    nlohmann::json compare = nlohmann::json::array(), success = nlohmann::json::array();
    std::lock_guard lock(mutex_);
    for (const auto& c : changes) {
      const std::string key = etcdEntityKey(settings_.prefix, c.kind, c.name);
      // Against the revision the writer saw, not the newest this node's watch has read: a
      // write based on a view the watch has not yet brought up to date is a conflict.
      compare.push_back({{"key", etcdKey(key)},
                         {"target", "MOD"},
                         {"result", "EQUAL"},
                         {"mod_revision", std::to_string(c.base_revision)}});
      if (!c.body) {
        success.push_back({{"request_delete_range", {{"key", etcdKey(key)}}}});
        continue;
      }
      nlohmann::json value = *c.body;
      const auto created = created_.find(key);
      value["created_at"] =
          created == created_.end() || created->second.empty() ? now : created->second;
      value["updated_at"] = now;
      success.push_back(
          {{"request_put", {{"key", etcdKey(key)}, {"value", base64Encode(value.dump())}}}});
    }
    auto answer = client_.call("/v3/kv/txn", {{"compare", compare}, {"success", success}});
    if (!answer) return answer.error();
    if (!isTrue(*answer, "succeeded")) return makeError(std::string(kConflict));
    const std::uint64_t revision = number(objectField(*answer, "header"), "revision");
    for (const auto& c : changes) {
      const std::string key = etcdEntityKey(settings_.prefix, c.kind, c.name);
      if (!c.body)
        created_.erase(key);
      else if (auto& created = created_[key]; created.empty())
        created = now;
    }
    return revision;
  }

  // Shared by every node: <prefix>/audit/<unix ns, 20 digits>-<pid>, so any node lists the
  // cluster's writes in time order; the oldest beyond kAuditKept are deleted now and then.
  Result<bool> appendAudit(const AuditRecord& record) override {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%020lld-%d", static_cast<long long>(ns), ::getpid());
    const nlohmann::json value = {{"time", record.time},     {"actor", record.actor},
                                  {"method", record.method}, {"path", record.path},
                                  {"status", record.status}, {"revision", record.revision},
                                  {"diff", record.diff}};
    auto put = client_.call("/v3/kv/put", {{"key", etcdKey(auditPrefix() + stamp)},
                                           {"value", base64Encode(value.dump())}});
    if (!put) return put.error();
    if (++audits_ % 100 == 0) pruneAudit();
    return true;
  }

  Result<std::vector<AuditRecord>> audit(std::size_t limit) override {
    const std::string prefix = auditPrefix();
    auto request = prefixRange(prefix);
    request.update(
        {{"sort_order", "DESCEND"}, {"sort_target", "KEY"}, {"limit", std::to_string(limit)}});
    auto answer = client_.call("/v3/kv/range", request);
    if (!answer) return answer.error();
    std::vector<AuditRecord> out;
    for (const auto& v : objectValues(*answer)) {
      out.push_back({stringField(v, "time"), stringField(v, "actor"), stringField(v, "method"),
                     stringField(v, "path"), static_cast<int>(number(v, "status")),
                     number(v, "revision"), v.value("diff", nlohmann::json())});
    }
    return out;
  }

  void announce(NodeInfo self) override {
    {
      std::lock_guard lock(mutex_);
      self_ = std::move(self);
    }
    heart_ = std::thread([this] { heartbeat(); });
  }

  void setNodeStatus(std::uint64_t revision, const std::string& error) override {
    std::lock_guard lock(mutex_);
    self_.revision = revision;
    self_.error = error;
  }

  Result<std::vector<NodeInfo>> nodes() override {
    const std::string prefix = settings_.prefix + "/nodes/";
    auto answer = client_.call("/v3/kv/range", prefixRange(prefix));
    if (!answer) return answer.error();
    std::vector<NodeInfo> out;
    for (const auto& v : objectValues(*answer)) {
      out.push_back({stringField(v, "id"), stringField(v, "address"), number(v, "revision"),
                     stringField(v, "error"),
                     static_cast<std::int64_t>(number(v, "heartbeat_ms"))});
    }
    return out;
  }

  bool sharesReleases() const override { return true; }

  Result<std::vector<ReleaseEvent>> releases() override {
    auto answer = client_.call("/v3/kv/range", prefixRange(releasePrefix()));
    if (!answer) return answer.error();
    std::vector<ReleaseEvent> out;
    for (const auto& kv : arrayField(*answer, "kvs")) {
      auto value = nlohmann::json::parse(decoded(kv, "value"), nullptr, false);
      if (value.is_object()) out.push_back({std::move(value), number(kv, "mod_revision")});
    }
    return out;
  }

  Result<std::uint64_t> putRelease(const std::string& id, const nlohmann::json& value,
                                   std::uint64_t expected) override {
    const std::string key = etcdKey(releasePrefix() + id);
    const nlohmann::json compare = {{{"key", key},
                                     {"target", "MOD"},
                                     {"result", "EQUAL"},
                                     {"mod_revision", std::to_string(expected)}}};
    const nlohmann::json success = {
        {{"request_put", {{"key", key}, {"value", base64Encode(value.dump())}}}}};
    auto answer = client_.call("/v3/kv/txn", {{"compare", compare}, {"success", success}});
    if (!answer) return answer.error();
    if (!isTrue(*answer, "succeeded")) return makeError(std::string(kConflict));
    return number(objectField(*answer, "header"), "revision");
  }

  // Usage lives beside the entities (`<prefix>.usage/`), so that loading and watching them
  // never reads it: one key per application, day, API and node
  // (`<prefix>.usage/<application>/<day, 8 digits>/<api>/<node>`), written only by its node,
  // read by any and merged. An application's days before `oldest_day` go when it is written
  // again (so what an idle application keeps is bounded too: its last days of use).
  bool keepsUsage() const override { return true; }

  Result<bool> addUsage(const std::vector<UsageRecord>& records, const UsageMerge& merge,
                        std::int64_t oldest_day) override {
    std::set<std::string> applications;
    for (const auto& r : records) applications.insert(r.application);
    for (const auto& application : applications) {
      const std::string from = usagePrefix() + application + "/";
      auto answer = client_.call(
          "/v3/kv/deleterange",
          {{"key", etcdKey(from)}, {"range_end", etcdKey(from + usageDay(oldest_day))}});
      if (!answer) return answer.error();
    }
    std::string node;
    {
      std::lock_guard lock(mutex_);
      node = self_.id.empty() ? "node" : self_.id;
    }
    nlohmann::json puts = nlohmann::json::array();
    for (const auto& r : records) {
      const std::string key =
          etcdKey(usagePrefix() + r.application + "/" + usageDay(r.day) + "/" + r.api + "/" + node);
      auto answer = client_.call("/v3/kv/range", {{"key", key}});
      if (!answer) return answer.error();
      nlohmann::json value = nlohmann::json::object();
      const auto& kvs = arrayField(*answer, "kvs");
      if (!kvs.empty()) value = nlohmann::json::parse(decoded(kvs[0], "value"), nullptr, false);
      if (!value.is_object()) value = nlohmann::json::object();
      merge(value, r.value);
      puts.push_back({{"request_put", {{"key", key}, {"value", base64Encode(value.dump())}}}});
      // etcd takes at most 128 operations per transaction (--max-txn-ops).
      if (puts.size() == 100 || &r == &records.back()) {
        auto answer = client_.call("/v3/kv/txn", {{"success", puts}});
        if (!answer) return answer.error();
        puts = nlohmann::json::array();
      }
    }
    return true;
  }

  Result<std::vector<UsageRecord>> usage(const std::string& application, std::int64_t from_day,
                                         const UsageMerge& merge) override {
    const std::string prefix = usagePrefix() + application + "/";
    auto answer = client_.call("/v3/kv/range", prefixRange(prefix));
    if (!answer) return answer.error();
    std::map<std::pair<std::int64_t, std::string>, nlohmann::json> merged;  // (day, api)
    for (const auto& kv : arrayField(*answer, "kvs")) {
      const std::string key = decoded(kv, "key");
      if (key.rfind(prefix, 0) != 0) continue;             // not asked for
      const std::string rest = key.substr(prefix.size());  // day/api/node
      const std::size_t a = rest.find('/'), b = rest.rfind('/');
      if (a == std::string::npos || b == a) continue;
      const std::int64_t day = std::strtoll(rest.substr(0, a).c_str(), nullptr, 10);
      if (day < from_day) continue;
      auto value = nlohmann::json::parse(decoded(kv, "value"), nullptr, false);
      if (!value.is_object()) continue;
      auto& into = merged[{day, rest.substr(a + 1, b - a - 1)}];
      if (into.is_null()) into = nlohmann::json::object();
      merge(into, value);
    }
    std::vector<UsageRecord> out;
    for (auto& [key, value] : merged)
      out.push_back({application, key.second, key.first, std::move(value)});
    return out;
  }

  void watch(std::uint64_t revision, std::function<void(StoreUpdate)> on_update) override {
    watcher_ = std::thread(
        [this, revision, on_update = std::move(on_update)] { follow(revision, on_update); });
  }

 private:
  static constexpr std::uint64_t kAuditKept = 10000;

  std::string auditPrefix() const { return settings_.prefix + "/audit/"; }
  std::string releasePrefix() const { return settings_.prefix + "/releases/"; }
  std::string usagePrefix() const { return settings_.prefix + ".usage/"; }
  // Fixed width, so that keys sort by day and a range ends before a day.
  static std::string usageDay(std::int64_t day) {
    std::string text = std::to_string(std::max<std::int64_t>(0, day));
    return std::string(text.size() < 8 ? 8 - text.size() : 0, '0') + text;
  }

  // Deletes the oldest audit records beyond kAuditKept (best effort: the next prune retries).
  void pruneAudit() {
    const std::string prefix = auditPrefix();
    auto all = prefixRange(prefix);
    all["count_only"] = true;
    auto counted = client_.call("/v3/kv/range", all);
    if (!counted) return;
    const std::uint64_t count = number(*counted, "count");
    if (count <= kAuditKept) return;
    // The newest record to delete: the (count - kept)th in ascending key order.
    auto first = prefixRange(prefix);
    first.update({{"sort_order", "ASCEND"},
                  {"sort_target", "KEY"},
                  {"keys_only", true},
                  {"limit", std::to_string(count - kAuditKept)}});
    auto oldest = client_.call("/v3/kv/range", first);
    if (!oldest || arrayField(*oldest, "kvs").empty()) return;
    const std::string last = decoded(oldest->at("kvs").back(), "key");
    (void)client_.call("/v3/kv/deleterange",
                       {{"key", etcdKey(prefix)}, {"range_end", etcdKey(last + '\0')}});
  }

  // A stored value as an entity; a value that is not an object named as its key is skipped
  // with a logged error (written by hand, say).
  std::optional<Entity> entityOf(const std::string& key, const std::string& name,
                                 const std::string& value, std::uint64_t mod_revision) {
    auto body = nlohmann::json::parse(value, nullptr, false);
    if (!body.is_object() || stringField(body, "name") != name) {
      ignored_ = "etcd key " + key + " does not hold an object named \"" + name + "\": ignored";
      ignored_key_ = key;
      spdlog::error("store: {}", ignored_);
      return std::nullopt;
    }
    if (key == ignored_key_) forgetIgnored();  // mended
    Entity e;
    e.name = name;
    e.created_at = stringField(body, "created_at");
    e.updated_at = stringField(body, "updated_at");
    stripMetadata(body);
    e.body = std::move(body);
    e.revision = mod_revision;
    return e;
  }

  // One watch per node, from the revision applied; on a broken stream it starts again from the
  // last revision seen, on the next endpoint.
  void follow(std::uint64_t revision, const std::function<void(StoreUpdate)>& on_update) {
    const std::string prefix = settings_.prefix + "/";
    bool lost = false;
    while (!stopping_) {
      auto create = prefixRange(prefix);
      create.update({{"start_revision", std::to_string(revision + 1)}, {"progress_notify", true}});
      const nlohmann::json request = {{"create_request", std::move(create)}};
      auto ended = watch_client_.stream(
          "/v3/watch", request,
          [&](const nlohmann::json& message) {
            const auto& result = objectField(message, "result");
            if (lost) {  // the stream works again: said once
              lost = false;
              on_update(StoreUpdate{});
            }
            if (number(result, "compact_revision") > 0 || isTrue(result, "canceled")) {
              StoreUpdate u;
              u.reload = true;
              on_update(std::move(u));
              revision = number(objectField(result, "header"), "revision");
              return false;
            }
            StoreUpdate u;
            for (const auto& ev : arrayField(result, "events")) {
              if (auto release = releaseOf(ev))
                u.releases.push_back(std::move(*release));
              else if (auto event = eventOf(ev))
                u.events.push_back(std::move(*event));
            }
            const std::uint64_t at = number(objectField(result, "header"), "revision");
            if (at > revision) revision = at;
            u.revision = revision;
            if (!u.events.empty() || !u.releases.empty()) on_update(std::move(u));
            return !stopping_;
          },
          std::chrono::milliseconds(15000));
      if (stopping_) break;
      if (!ended && !lost) {
        lost = true;
        StoreUpdate u;
        u.error = ended.error().message;
        on_update(std::move(u));
      }
      for (int i = 0; i < 5 && !stopping_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // The node's key under a lease of kLeaseTtl, rewritten every kBeat with its status; a lease
  // that expired (etcd was away longer) is granted again.
  void heartbeat() {
    static constexpr int kLeaseTtl = 10;
    static constexpr auto kBeat = std::chrono::seconds(2);
    EtcdClient client(settings_.endpoints, settings_.timeout, settings_.tls);
    if (!settings_.username.empty()) client.setCredentials(settings_.username, settings_.password);
    std::string lease;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      NodeInfo self = self_;
      if (self.error.empty()) self.error = ignored_;  // a value in etcd this node had to skip
      lock.unlock();
      self.heartbeat_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      if (!lease.empty()) {
        auto kept = client.call("/v3/lease/keepalive", {{"ID", lease}});
        if (!kept || number(objectField(*kept, "result"), "TTL") == 0) lease.clear();
      }
      if (lease.empty())
        if (auto granted = client.call("/v3/lease/grant", {{"TTL", std::to_string(kLeaseTtl)}}))
          lease = stringField(*granted, "ID");
      if (!lease.empty()) {
        const nlohmann::json value = {{"id", self.id},
                                      {"address", self.address},
                                      {"revision", self.revision},
                                      {"error", self.error},
                                      {"heartbeat_ms", self.heartbeat_ms}};
        if (!client.call("/v3/kv/put", {{"key", etcdKey(settings_.prefix + "/nodes/" + self.id)},
                                        {"value", base64Encode(value.dump())},
                                        {"lease", lease}}))
          lease.clear();
      }
      lock.lock();
      wake_.wait_for(lock, kBeat, [this] { return stopping_.load(); });
    }
    lock.unlock();
    if (!lease.empty()) (void)client.call("/v3/lease/revoke", {{"ID", lease}});  // gone at once
  }

  void forgetIgnored() {
    ignored_.clear();
    ignored_key_.clear();
  }

  // A release written (by any node); deleted or unreadable ones are skipped.
  std::optional<ReleaseEvent> releaseOf(const nlohmann::json& ev) {
    const auto& kv = objectField(ev, "kv");
    const std::string key = decoded(kv, "key");
    if (key.rfind(releasePrefix(), 0) != 0) return std::nullopt;
    ReleaseEvent out;
    out.mod_revision = number(kv, "mod_revision");
    if (stringField(ev, "type") != "DELETE")
      out.value = nlohmann::json::parse(decoded(kv, "value"), nullptr, false);
    if (!out.value.is_object()) {
      spdlog::error("store: etcd key {} does not hold a release: ignored", key);
      out.value = nlohmann::json::object();  // not an entity either: consumed here
    }
    return out;
  }

  std::optional<StoreEvent> eventOf(const nlohmann::json& ev) {
    const auto& kv = objectField(ev, "kv");
    const std::string key = decoded(kv, "key");
    StoreEvent out;
    std::string name;
    if (!parseEtcdEntityKey(settings_.prefix, key, out.change.kind, name)) return std::nullopt;
    out.change.name = name;
    out.revision = number(kv, "mod_revision");
    std::lock_guard lock(mutex_);
    if (stringField(ev, "type") == "DELETE") {
      created_.erase(key);
      if (key == ignored_key_) forgetIgnored();
      return out;
    }
    auto entity = entityOf(key, name, decoded(kv, "value"), out.revision);
    if (!entity) return std::nullopt;
    created_[key] = entity->created_at;
    out.updated_at = entity->updated_at;
    out.change.body = std::move(entity->body);
    return out;
  }

  EtcdSettings settings_;
  EtcdClient client_;                           // the control thread's calls
  EtcdClient watch_client_;                     // the watch's stream
  std::mutex mutex_;                            // created_, shared by commits and the watch
  std::map<std::string, std::string> created_;  // each key's created_at, kept on updates
  std::uint64_t audits_ = 0;                    // appended by this node, for pruning now and then
  std::atomic<bool> stopping_{false};
  std::condition_variable wake_;       // ends the heartbeat's wait at shutdown
  NodeInfo self_;                      // what the heartbeat says (under mutex_)
  std::string ignored_, ignored_key_;  // the last value skipped as not an object, and its key
  std::thread watcher_;
  std::thread heart_;
};

}  // namespace

std::unique_ptr<EntityStore> makeEtcdStore(const EtcdSettings& settings) {
  return std::make_unique<EtcdStore>(settings);
}

Result<std::unique_ptr<EntityStore>> openEtcdStore(const config::StoreConfig& config) {
  EtcdSettings settings;
  settings.endpoints = config.endpoints;
  settings.prefix = config.prefix;
  settings.username = config.username;
  settings.password = config.password;
  if (config.tls) {
    auto context = tls::ClientContext::build(*config.tls);
    if (!context) return makeError("store.tls: " + context.error().message);
    settings.tls = *context;
  }
  return makeEtcdStore(settings);
}

}  // namespace portico::store
