#pragma once
// The Admin API under /admin/v1/ (docs/admin-api.md): entities read and written at run time,
// validated by the same code as the file, stored, then published before the answer returns.
// Runs on the control thread; the server gives it the hooks below, so it is tested without
// sockets or workers.
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "admin/release_record.h"
#include "config/model.h"
#include "observability/release_stats.h"
#include "server/release_controller.h"
#include "store/entity_store.h"

namespace portico::admin {

// A compile error, its path as a JSON Pointer into the document ("/routes/0/upstream").
struct FieldError {
  std::string path;
  std::string message;
};

// What the server does with a candidate set of entities.
struct ControlHooks {
  // Compiles the file's sections with `candidate` (nothing is published): empty on success.
  // `changes`: what differs from the entities now served (the rest may be reused compiled).
  // `prepared` keeps what publish() needs (the compiled snapshot) until then.
  std::function<std::vector<FieldError>(const store::EntitySet& candidate,
                                        const std::vector<store::Change>& changes,
                                        std::shared_ptr<const void>& prepared)>
      compile;
  // Swaps in what compile() prepared; returns once every worker serves it.
  std::function<void(std::shared_ptr<const void> prepared)> publish;
  std::function<std::string()> now;  // RFC 3339, UTC

  // Config releases (ADR 0014); without these an apply with ?rollout=true is refused.
  // Serves `prepared` (compile()'s) to `percent` of new requests beside the stable snapshot;
  // null ends the release (every request on the stable snapshot).
  std::function<void(std::shared_ptr<const void> prepared, int percent)> serve_candidate;
  // This node's requests on each side (observability::ReleaseSide) so far; they only grow.
  std::function<std::array<observability::ReleaseTotals, 2>()> release_totals;
  std::function<std::chrono::steady_clock::time_point()> steady_now;
};

class AdminApi {
 public:
  AdminApi(store::EntityStore& store, ControlHooks hooks);

  // The server keeps these current (at start, after each reload).
  void setEntities(store::EntitySet entities) { entities_ = std::move(entities); }
  const store::EntitySet& entities() const { return entities_; }
  void setAdmin(const config::AdminConfig& admin) { admin_ = admin; }
  void setRollout(const config::RolloutConfig& rollout) { rollout_ = rollout; }
  // Moves the running release on when its interval is due: judges both sides' figures, then
  // serves the next step, rolls back or promotes (commits). The server calls it often
  // (every 250 ms); tests call it after advancing the injected clock.
  void tickRelease();
  // A write on behalf of another part (the developer portal): validated, stored, published and
  // audited like an Admin API write by `actor` of `what` (a path, for the audit log).
  AdminResponse applyChanges(std::vector<store::Change> changes, const std::string& actor,
                             const std::string& what);
  // /metrics series of releases (once one ran): requests and 5xx per side, labelled with the
  // config revision each side serves (the candidate's is its release id), and the share.
  void appendReleaseMetrics(std::string& out) const;
  // At start: joins the releases the store shares that still run; one this node drove
  // before it restarted is rolled back (its steps and figures were in the old process).
  void joinReleases();
  // Rolls back the running release, if any (the file it was compiled with changed).
  void abortRelease(const std::string& reason) { endRelease("rolled_back", reason); }

  bool handles(const std::string& path) const { return path.rfind("/admin/v1/", 0) == 0; }
  AdminResponse handle(const AdminRequest& request);

  // What other nodes wrote (the store's watch, on the control thread): events newer than this
  // node's objects are applied, compiled and published; a compile error keeps the old snapshot
  // serving and is kept as this node's last error (as is a watch that lost the store).
  void applyFromStore(const store::StoreUpdate& update);
  const std::string& lastStoreError() const { return store_error_; }
  // This node in `GET /admin/v1/nodes`: host name and admin port.
  store::NodeInfo self() const;

 private:
  struct Caller;
  AdminResponse authorizeAndRoute(const AdminRequest& request, Caller& caller);
  AdminResponse route(const AdminRequest& request);
  AdminResponse list(store::Kind kind, const AdminRequest& request);
  AdminResponse getOne(store::Kind kind, const std::string& name);
  AdminResponse write(store::Kind kind, const std::string& name, const AdminRequest& request);
  AdminResponse applyDocument(const AdminRequest& request);
  AdminResponse importSpec(const std::string& api, const AdminRequest& request);
  AdminResponse getSpec(const std::string& api, const AdminRequest& request);
  // Plans `desired` against the current entities (pruning only objects with `prune_labels`),
  // then answers the plan (dry_run: with compile errors) or commits it.
  AdminResponse planAndApply(const store::EntitySet& desired, bool prune,
                             const store::Labels& prune_labels, const AdminRequest& request);
  // `rollout`: compiled, then served as a release's candidate instead of committed.
  AdminResponse commit(std::vector<store::Change> changes, int status, nlohmann::json body,
                       bool rollout = false);
  // Releases (admin_releases.cc).
  AdminResponse startRelease(std::vector<store::Change> changes, std::uint64_t base,
                             std::shared_ptr<const void> prepared, nlohmann::json body);
  AdminResponse releases(const std::vector<std::string>& parts, const AdminRequest& request);
  // The release that blocks writes now, or nullptr.
  const ReleaseRecord* runningRelease() const;
  ReleaseRecord* findRelease(const std::string& id);
  // Ends the running release here (the candidate stops being served) as `state`.
  void endRelease(const std::string& state, const std::string& reason);
  // Writes the record to the store when releases are shared (etcd); false on a conflict or
  // error (the caller tries again at the next tick).
  bool shareRelease(ReleaseRecord& record);
  // Another node's release (or a change to one) from the store's watch.
  void followRelease(const store::ReleaseEvent& event);
  void keepRelease(ReleaseRecord record);
  // The changes as the audit log shows them: op, before and after, credentials redacted.
  nlohmann::json diffOf(const std::vector<store::Change>& changes) const;
  void audit(const AdminRequest& request, const std::string& actor, int status);
  AdminResponse listNodes();
  // Tells the store what this node now serves (its heartbeat carries it to the others).
  void reportStatus() { store_.setNodeStatus(entities_.revision, store_error_); }
  // The entity events of a store update (applyFromStore's first half).
  void applyEntities(const store::StoreUpdate& update);

  store::EntityStore& store_;
  std::string store_error_;
  std::string actor_;  // who makes the request being answered
  config::RolloutConfig rollout_;
  std::deque<ReleaseRecord> releases_;  // the latest, oldest first
  // The release this node serves a candidate for: the judge, the candidate, both sides'
  // totals when the interval began.
  struct Running {
    std::string id;
    server::ReleaseController controller;
    std::shared_ptr<const void> prepared;
    std::array<observability::ReleaseTotals, 2> baseline;
    bool driver = false;    // this node created it: it moves the steps and commits
    bool unshared = false;  // ended here, but the store has not taken it yet (etcd conflict)
    // The stable side's last interval with min_requests: what a candidate at (nearly) 100%
    // is compared with, the stable side then seeing (nearly) nothing.
    server::SideFigures reference;
    std::chrono::steady_clock::time_point driver_checked;  // a follower's last look at nodes
  };
  std::optional<Running> running_;
  ControlHooks hooks_;
  store::EntitySet entities_;
  config::AdminConfig admin_;
  // What the write being answered tried (set by commit), for its audit record.
  struct Attempt {
    std::uint64_t revision = 0;  // made; 0 when refused
    nlohmann::json diff = nlohmann::json::array();
  } attempt_;
};

// Credentials (keys, secrets, passwords, tokens, private keys) replaced with "<redacted>".
nlohmann::json redactCredentials(nlohmann::json value);
// `incoming` with every "<redacted>" value that `stored` has at the same place put back, so a
// read-modify-write of a redacted object keeps its credentials.
nlohmann::json restoreRedacted(nlohmann::json incoming, const nlohmann::json& stored);
// "routes[3].match.path" -> "/routes/3/match/path".
std::string jsonPointerOf(const std::string& config_path);

}  // namespace portico::admin
