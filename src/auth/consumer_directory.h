#pragma once
// The consumers of a config snapshot and their credentials, indexed for O(1) lookups on the
// request path: by name, by API key (SHA-256 of the key: the snapshot never holds keys in
// clear), and by Basic username. Built once per snapshot, immutable, shared by every worker.
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/request_context.h"
#include "auth/jwt.h"
#include "config/diagnostics.h"
#include "config/model.h"
#include "core/flat_map.h"
#include "core/sha256.h"

namespace portico::auth {

using portico::Sha256Digest;

struct BasicCredential {
  const api::Consumer* consumer = nullptr;
  std::string password_hash;  // crypt(3) string: $y$, $2b$, $6$, $5$...
};

// A consumer's own JWT key, found by the token's `kid`.
struct JwtCredential {
  const api::Consumer* consumer = nullptr;
  std::shared_ptr<const Jwk> key;
  std::string algorithm;  // the only alg accepted with this key
};

class ConsumerDirectory {
 public:
  // Reports every bad credential with its config path.
  static std::shared_ptr<const ConsumerDirectory> build(
      const std::vector<config::ConsumerConfig>& consumers, config::Diagnostics& diag);

  const api::Consumer* byName(std::string_view name) const;
  // The consumer holding this API key, compared by digest in constant time.
  const api::Consumer* byKey(std::string_view key) const;
  const BasicCredential* byUsername(std::string_view username) const;
  const JwtCredential* byJwtKey(std::string_view kid) const;
  std::size_t size() const { return consumers_.size(); }
  const std::vector<api::Consumer>& all() const { return consumers_; }
  bool hasKeys() const { return !by_key_.empty(); }
  bool hasBasic() const { return !by_username_.empty(); }
  // A real hash of this config (or a fixed one), for checking passwords of unknown users at
  // the same cost as known ones.
  const std::string& anyPasswordHash() const { return any_hash_; }

 private:
  std::vector<api::Consumer> consumers_;  // stable: sized once
  std::unordered_map<std::string_view, const api::Consumer*> by_name_;
  // SHA-256 digest of the key -> consumer. The digest is its own hash (its first 8 bytes) and is
  // kept in the slot: one slot to read per lookup, then the consumer.
  struct DigestHash {
    std::size_t operator()(const Sha256Digest& d) const {
      std::size_t h;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  FlatMap<Sha256Digest, const api::Consumer*, DigestHash> by_key_;
  std::unordered_map<std::string, BasicCredential> by_username_;
  std::unordered_map<std::string, JwtCredential> by_jwt_kid_;
  std::string any_hash_ =
      "$6$portico$"
      "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
};

}  // namespace portico::auth
