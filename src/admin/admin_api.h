#pragma once
// The Admin API under /admin/v1/ (docs/admin-api.md): entities read and written at run time,
// validated by the same code as the file, stored, then published before the answer returns.
// Runs on the control thread; the server gives it the hooks below, so it is tested without
// sockets or workers.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "config/model.h"
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
};

class AdminApi {
 public:
  AdminApi(store::EntityStore& store, ControlHooks hooks);

  // The server keeps these current (at start, after each reload).
  void setEntities(store::EntitySet entities) { entities_ = std::move(entities); }
  const store::EntitySet& entities() const { return entities_; }
  void setAdmin(const config::AdminConfig& admin) { admin_ = admin; }

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
  AdminResponse commit(std::vector<store::Change> changes, int status, nlohmann::json body);
  // The changes as the audit log shows them: op, before and after, credentials redacted.
  nlohmann::json diffOf(const std::vector<store::Change>& changes) const;
  void audit(const AdminRequest& request, const std::string& actor, int status);
  AdminResponse listNodes();
  // Tells the store what this node now serves (its heartbeat carries it to the others).
  void reportStatus() { store_.setNodeStatus(entities_.revision, store_error_); }

  store::EntityStore& store_;
  std::string store_error_;
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
