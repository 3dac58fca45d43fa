#pragma once
// Where the running config's entities come from (ADR 0012). With `store: file` the file is the
// whole config. With `store: sqlite` the file keeps server, listeners and store, the database
// holds the entities: entities still in the file seed an empty database at first start, and are
// an error afterwards (no silent second source).
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "config/model.h"
#include "core/result.h"
#include "store/entity_store.h"

namespace portico::snapshot {
struct SnapshotInputs;
}

namespace portico::server {

class EntitySource {
 public:
  struct Composed {
    // With a database, compiled through inputsFor(); with store: file the file's text is
    // compiled (errors keep their file:line:col).
    store::EntitySet entities;
    // Entities the file brought to an empty database: store them once the document compiles.
    std::vector<store::Change> seed;
  };

  // `wanted`: the file's `store` (as compiled); `file_root`: the parsed file. `startup`:
  // seeding is allowed, and the store may be opened.
  Result<Composed> compose(const config::StoreConfig& wanted, const nlohmann::json& file_root,
                           bool startup);
  // After compose() compiled: stores the seed (if any) and returns the entities as stored.
  Result<store::EntitySet> commitSeed(Composed& composed, const std::string& now);

  // The file's own sections with `entities` in place of its entity lists.
  nlohmann::json documentWith(const store::EntitySet& entities) const;
  // Inputs compiling a database's config: the file's own sections as the document, and
  // `entities` read where they lie (no document of 10,000 routes composed per write); they
  // must not change until the snapshot is built.
  void inputsFor(const store::EntitySet& entities, snapshot::SnapshotInputs& in) const;
  store::EntityStore& store() { return *store_; }
  bool database() const { return config_.type != config::StoreConfig::Type::File; }

  // With etcd and `cache`: the entities applied, written after each change (atomically), read
  // at a start while etcd is unreachable. stale(): serving from it, not yet caught up.
  void saveCache(const store::EntitySet& entities) const;
  bool stale() const { return stale_; }
  void caughtUp() { stale_ = false; }

 private:
  config::StoreConfig config_;
  std::unique_ptr<store::EntityStore> store_;
  bool stale_ = false;
  std::shared_ptr<const nlohmann::json> file_sections_ =
      std::make_shared<const nlohmann::json>(nlohmann::json::object());
};

}  // namespace portico::server
