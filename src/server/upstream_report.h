#pragma once
// What the admin listener shows of upstream health: `/upstreams` (JSON) and the health and
// circuit-breaker series of `/metrics`, read from the shared health state of the live snapshot.
#include <string>

#include <nlohmann/json.hpp>

#include "server/snapshot.h"

namespace portico::server {

nlohmann::json upstreamsReport(const Snapshot& snapshot);
void appendUpstreamMetrics(const Snapshot& snapshot, std::string& out);

}  // namespace portico::server
