#pragma once
// A config release as `GET /admin/v1/releases` shows it and as etcd shares it
// (<prefix>/releases/<id>): the changes it would commit, the step it is at, its state and the
// figures each judged interval had (ADR 0014).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/entity_set.h"

namespace portico::admin {

struct ReleaseRecord {
  std::string id;
  std::string node;  // the node that created it and moves it from step to step
  std::string actor;
  std::string created_at, updated_at;
  std::uint64_t base_revision = 0;  // the stable config's
  std::vector<store::Change> changes;
  int percent = 0;                    // of requests on the candidate now
  std::string state = "progressing";  // progressing | promoted | rolled_back
  std::string reason;                 // why it was rolled back
  // Each judged interval: {"percent", "node", "stable": {requests, errors_5xx, p99_ms},
  // "candidate": {...}, "decision"}.
  nlohmann::json intervals = nlohmann::json::array();
  std::uint64_t revision = 0;      // the revision its promotion committed
  std::uint64_t mod_revision = 0;  // the store key's (etcd), for the next compare; not shown

  bool progressing() const { return state == "progressing"; }
  nlohmann::json toJson() const;
  // nullopt for a value that is not a release (written by hand, say).
  static std::optional<ReleaseRecord> fromJson(const nlohmann::json& value);
};

}  // namespace portico::admin
