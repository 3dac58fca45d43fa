#pragma once
// Where entities live (ADR 0012): the config file (read-only at run time) or an embedded SQLite
// database; etcd comes next behind the same interface. Only the control thread uses a store:
// it is never on the request path.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "store/entity_set.h"

namespace portico::store {

// One Admin API write, accepted or refused. Credentials never reach it (see redact()).
struct AuditRecord {
  std::string time;   // RFC 3339
  std::string actor;  // the token's name, "anonymous" without one
  std::string method;
  std::string path;
  int status = 0;
  std::uint64_t revision = 0;  // the revision the write made (0 when refused)
  nlohmann::json diff;         // {"create":[…],"update":[…],"delete":[…]} with bodies
};

// What commit() refuses with when the stored revision is not the one the write was based on.
inline constexpr std::string_view kConflict = "conflict";

// A change another writer made to the store (another node, through etcd's watch), with the
// revision it was made at.
struct StoreEvent {
  Change change;
  std::uint64_t revision = 0;
  std::string updated_at;  // from the stored object, when it says
};

// What a store's watch delivers: events in order, or `reload` when they cannot be followed (the
// history was compacted): read everything again with load().
// A config release as the store holds it (etcd: <prefix>/releases/<id>), for every node to
// follow; `value` is the release's JSON (admin/release_record.h).
struct ReleaseEvent {
  nlohmann::json value;
  std::uint64_t mod_revision = 0;
};

struct StoreUpdate {
  std::vector<StoreEvent> events;
  std::vector<ReleaseEvent> releases;  // releases other nodes (or this one) wrote
  std::uint64_t revision = 0;          // the store's revision after them
  bool reload = false;
  std::string error;  // set: the watch lost the store (it keeps trying)
};

// One Portico node as the cluster sees it (`GET /admin/v1/nodes`).
struct NodeInfo {
  std::string id;                 // host:admin-port
  std::string address;            // its admin listener
  std::uint64_t revision = 0;     // the store revision it serves
  std::string error;              // its last refusal or store error, "" when none
  std::int64_t heartbeat_ms = 0;  // when it last said so (Unix ms)
};

// The developer portal's usage of one application, API and UTC day (ADR 0015): `value` is
// filters::UsageBook's JSON (counts, latency buckets, the last quota seen). Kept outside the
// entities: it changes every minute and never reaches a snapshot.
struct UsageRecord {
  std::string application;
  std::string api;
  std::int64_t day = 0;  // days since 1970-01-01
  nlohmann::json value;
};
// Merges an addition into a stored value (the store does not know the value's shape).
using UsageMerge = std::function<void(nlohmann::json& into, const nlohmann::json& add)>;

class EntityStore {
 public:
  virtual ~EntityStore() = default;
  virtual std::string_view type() const = 0;
  virtual bool writable() const = 0;
  // Every entity and the current revision.
  virtual Result<EntitySet> load() = 0;
  // Stores `changes` atomically as revision base + 1 (all or nothing) and returns it; refuses
  // with kConflict when the stored revision is not `base`.
  virtual Result<std::uint64_t> commit(std::uint64_t base, const std::vector<Change>& changes,
                                       const std::string& now) = 0;
  virtual Result<bool> appendAudit(const AuditRecord& record) = 0;
  // The newest records first.
  virtual Result<std::vector<AuditRecord>> audit(std::size_t limit) = 0;
  // Stores other nodes write to: delivers their changes after `revision` to `on_update` (on a
  // thread of the store's) until the store is destroyed. Others: nothing to watch.
  virtual void watch(std::uint64_t revision, std::function<void(StoreUpdate)> on_update) {
    (void)revision;
    (void)on_update;
  }
  // Shared stores: registers this node (under a lease, renewed by a thread of the store's,
  // carrying what setNodeStatus last said) and lists every registered node. Others: no list.
  virtual void announce(NodeInfo self) { (void)self; }
  virtual void setNodeStatus(std::uint64_t revision, const std::string& error) {
    (void)revision;
    (void)error;
  }
  virtual Result<std::vector<NodeInfo>> nodes() { return std::vector<NodeInfo>{}; }
  // Whether releases are shared with other nodes (then written with putRelease and followed
  // through the watch); else they live in the node's memory only.
  virtual bool sharesReleases() const { return false; }
  // Writes release `id` if its key's mod_revision is `expected` (0: it must not exist yet);
  // the new mod_revision, or kConflict.
  // Every shared release (at start: a node joins the ones running).
  virtual Result<std::vector<ReleaseEvent>> releases() { return std::vector<ReleaseEvent>{}; }
  // Whether usage is kept here (shared by nodes, kept across restarts); else the portal shows
  // what the node counted since it started.
  virtual bool keepsUsage() const { return false; }
  // Adds each record to the stored one (merge), all or nothing; drops days before
  // `oldest_day`.
  virtual Result<bool> addUsage(const std::vector<UsageRecord>& records, const UsageMerge& merge,
                                std::int64_t oldest_day) {
    (void)records, (void)merge, (void)oldest_day;
    return makeError("this store does not keep usage");
  }
  // An application's records from `from_day` on (one per API and day, every node's merged).
  virtual Result<std::vector<UsageRecord>> usage(const std::string& application,
                                                 std::int64_t from_day, const UsageMerge& merge) {
    (void)application, (void)from_day, (void)merge;
    return std::vector<UsageRecord>{};
  }
  virtual Result<std::uint64_t> putRelease(const std::string& id, const nlohmann::json& value,
                                           std::uint64_t expected) {
    (void)id, (void)value, (void)expected;
    return makeError("this store does not share releases");
  }
};

// Audit records kept in memory (the newest `kept`), for stores without a table of their own.
class MemoryAudit {
 public:
  void append(const AuditRecord& record);
  std::vector<AuditRecord> newest(std::size_t limit) const;

 private:
  static constexpr std::size_t kKept = 1000;
  std::deque<AuditRecord> records_;
};

// `store: { type: file }`: entities come from the file; audit records are kept in memory (the
// last 1,000).
std::unique_ptr<EntityStore> makeFileStore();

}  // namespace portico::store
