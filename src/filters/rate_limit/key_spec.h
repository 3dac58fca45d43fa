#pragma once
// What a counter is keyed by, for the traffic filters (rate-limit, quota, concurrency-limit):
// a list of parts, each read from the request.
#include <string>
#include <vector>

#include <optional>

#include "api/filter.h"
#include "ratelimit/local_store.h"
#include "redis/client.h"

namespace portico::config {
class ObjectReader;
}

namespace portico::filters {

struct KeyPart {
  enum class Kind { Consumer, ConsumerGroup, Ip, Route, Header, Claim };
  Kind kind = Kind::Ip;
  std::string name;  // header or claim name
};

// Reads `key` (a string or a list of strings: consumer | consumer_group | ip | route |
// header:NAME | claim:NAME). Absent: `fallback`.
std::vector<KeyPart> readKeySpec(const nlohmann::json* node, const std::string& path,
                                 config::Diagnostics& diag, KeyPart::Kind fallback);

// Where a traffic filter counts: `backend` (local | redis), `redis`, `on_backend_failure`
// (fail_open | fail_closed) and `name` (the counters' namespace; default: the config path).
struct CounterBackend {
  bool redis = false;
  std::optional<redis::Settings> settings;
  bool fail_open = true;
  std::string name;
};
void readCounterBackend(config::ObjectReader& r, const std::string& default_name,
                        CounterBackend& out);

// A process-wide local store under `key` (see api::Services::shared): counters survive a
// reload that keeps the key.
std::shared_ptr<ratelimit::LocalStore> sharedLocalStore(api::Services& services,
                                                        const std::string& key,
                                                        ratelimit::Algorithm algorithm,
                                                        std::vector<ratelimit::Limit> limits);

// The request's key: the parts' values joined by '|'. A request without a consumer is keyed
// by its client address instead (as an anonymous caller); a missing header or claim is "-".
void buildKey(const std::vector<KeyPart>& parts, const api::RequestContext& ctx, std::string& out);

}  // namespace portico::filters
