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

namespace portico::server {

class EntitySource {
 public:
  struct Composed {
    // The document to compile: null with store: file (the file's text is compiled, so errors
    // keep their file:line:col).
    std::shared_ptr<const nlohmann::json> document;
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
  store::EntityStore& store() { return *store_; }
  bool database() const { return config_.type != config::StoreConfig::Type::File; }

 private:
  config::StoreConfig config_;
  std::unique_ptr<store::EntityStore> store_;
  nlohmann::json file_sections_ = nlohmann::json::object();
};

}  // namespace portico::server
