#pragma once
// `store: { type: etcd, endpoints, prefix }`: one key per entity, <prefix>/<kind>/<name>, whose
// value is the object as the file has it (plus created_at / updated_at). Writes are etcd
// transactions comparing each key's mod_revision with the one this node knows, so If-Match and
// concurrent writers hold across the cluster; one watch per node follows the other nodes'
// writes (ADR 0013).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "store/entity_store.h"

namespace portico::tls {
class ClientContext;
}

namespace portico::store {

struct EtcdSettings {
  std::vector<std::string> endpoints;  // http://host:port
  std::string prefix = "/portico";
  std::chrono::milliseconds timeout{2000};        // per call
  std::string username, password;                 // etcd authentication, when set
  std::shared_ptr<const tls::ClientContext> tls;  // https endpoints
};

// Connects lazily: an unreachable etcd is reported by load() and commit(), not here.
std::unique_ptr<EntityStore> makeEtcdStore(const EtcdSettings& settings);
// The same from `store:` (type etcd); refuses TLS files it cannot load.
Result<std::unique_ptr<EntityStore>> openEtcdStore(const config::StoreConfig& config);

// The key of an entity, and the reverse (false for a key that is not <prefix>/<kind>/<name>).
std::string etcdEntityKey(const std::string& prefix, Kind kind, const std::string& name);
bool parseEtcdEntityKey(const std::string& prefix, std::string_view key, Kind& kind,
                        std::string& name);

}  // namespace portico::store
