#pragma once
// What the admin listener shows of the live snapshot's shared state: `/upstreams` (JSON), and
// the health, circuit-breaker and tracing-export series of `/metrics`.
#include <string>

#include <nlohmann/json.hpp>

#include "snapshot/snapshot.h"

namespace portico::server {

nlohmann::json upstreamsReport(const snapshot::Snapshot& snapshot);
void appendUpstreamMetrics(const snapshot::Snapshot& snapshot, std::string& out);

}  // namespace portico::server
