#pragma once
// Where entities live (ADR 0012): the config file (read-only at run time) or an embedded SQLite
// database; etcd comes next behind the same interface. Only the control thread uses a store:
// it is never on the request path.
#include <cstdint>
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
};

// `store: { type: file }`: entities come from the file; audit records are kept in memory (the
// last 1,000).
std::unique_ptr<EntityStore> makeFileStore();

}  // namespace portico::store
