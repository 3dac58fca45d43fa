#pragma once
// What the token filters (jwt, oauth2-introspection) share: reading a bearer token, the
// verified result of a token (consumer, headers for the upstream, expiry) and a bounded cache
// of those results shared by the workers.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/filter.h"
#include "core/keyed_hash.h"

namespace portico::auth {
class ConsumerDirectory;
}

namespace portico::filters {

// "Bearer <token>" from `header`; empty when absent or another scheme.
std::string_view bearerToken(const http::HeaderList& headers, const std::string& header);

using ClaimHeaders = std::vector<std::pair<std::string, std::string>>;  // claim -> header

struct Verified {
  bool active = true;  // false: a cached refusal
  const api::Consumer* consumer = nullptr;
  std::vector<std::pair<std::string, std::string>> headers;  // header -> value for upstream
  std::int64_t expires = 0;                                  // seconds since the epoch
};

// Fills `v` from verified claims: the consumer named by `consumer_claim` (false when it names
// none) and the headers of `claims_to_headers`; false too when a claim bound for a header holds
// CR, LF or NUL.
bool fromClaims(const nlohmann::json& claims, const std::string& consumer_claim,
                const ClaimHeaders& claims_to_headers, const auth::ConsumerDirectory* consumers,
                Verified& v);

// Sets the request up as `v` says: consumer, headers (client-sent copies removed first).
void applyVerified(api::RequestContext& ctx, const Verified& v,
                   const ClaimHeaders& claims_to_headers);

// The request's start in Unix seconds (the worker's injected clock): "now" for token expiry
// and credential caches.
std::int64_t unixNow(const api::RequestContext& ctx);

class TokenCache {
 public:
  explicit TokenCache(std::size_t capacity) : per_shard_(capacity / kShards + 1) {}
  // `key`: a digest of the credential, or the token itself (exact match).
  bool find(const std::string& key, std::int64_t now, Verified& out);
  void add(const std::string& key, Verified v);

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Verified, KeyedHash, std::equal_to<>> entries;
  };
  // Keyed hash: the key can be the client's token itself (core/keyed_hash.h).
  Shard& shard(const std::string& key) { return shards_[KeyedHash{}(key) % kShards]; }
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

// Reads `claims_to_headers` (claim: header) from a filter config.
void readClaimHeaders(const nlohmann::json* j, const std::string& path, config::Diagnostics& diag,
                      ClaimHeaders& out);

}  // namespace portico::filters
