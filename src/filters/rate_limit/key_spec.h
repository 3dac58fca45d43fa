#pragma once
// What a counter is keyed by, for the traffic filters (rate-limit, quota, concurrency-limit):
// a list of parts, each read from the request.
#include <string>
#include <vector>

#include "api/filter.h"

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

// The request's key: the parts' values joined by '|'. A request without a consumer is keyed
// by its client address instead (as an anonymous caller); a missing header or claim is "-".
void buildKey(const std::vector<KeyPart>& parts, const api::RequestContext& ctx, std::string& out);

}  // namespace portico::filters
