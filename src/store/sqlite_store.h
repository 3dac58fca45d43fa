#pragma once
// `store: { type: sqlite, path }`: entities in an embedded SQLite database (WAL journal, one
// transaction per write, so a kill -9 leaves the old state or the new one).
#include <memory>
#include <string>

#include "store/entity_store.h"

namespace portico::store {

// Opens (creating if absent) the database at `path`. A file that is not a database, or a
// damaged one, is refused with SQLite's error.
Result<std::unique_ptr<EntityStore>> openSqliteStore(const std::string& path);

}  // namespace portico::store
