#pragma once
// JSON Web Tokens (RFC 7519) signed with JWS (RFC 7515), verified with OpenSSL 3: RS256/384/512,
// PS256/384/512, ES256/384, EdDSA (Ed25519), HS256/384/512. Keys come from JWK sets (RFC 7517).
// `alg: none` is never accepted, and a key is only used with the algorithms of its type (no
// HMAC with an RSA public key: algorithm confusion).
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace portico::auth {

bool base64UrlDecode(std::string_view in, std::string& out);

enum class KeyType { Rsa, Ec256, Ec384, Ed25519, Secret };

// One verification key. Immutable once built.
class Jwk {
 public:
  static std::shared_ptr<const Jwk> fromJson(const nlohmann::json& jwk, std::string& error);
  static std::shared_ptr<const Jwk> fromSecret(std::string secret);
  // A PEM public key (RSA, EC P-256/P-384, Ed25519).
  static std::shared_ptr<const Jwk> fromPem(const std::string& pem, std::string& error);
  ~Jwk();
  KeyType type() const { return type_; }
  const std::string& kid() const { return kid_; }
  // Verifies `signature` over `input` with `alg`; false for any mismatch of alg and key type.
  bool verify(std::string_view alg, std::string_view input, std::string_view signature) const;

 private:
  Jwk() = default;
  KeyType type_ = KeyType::Secret;
  std::string kid_;
  void* pkey_ = nullptr;  // EVP_PKEY*
  std::string secret_;
};

class KeySet {
 public:
  // Keys it cannot use (unknown kty, encryption keys) are skipped; `errors` says why.
  static std::shared_ptr<const KeySet> fromJwks(const nlohmann::json& jwks, std::string& errors);
  const Jwk* find(std::string_view kid) const;
  std::size_t size() const { return keys_.size(); }
  const std::vector<std::shared_ptr<const Jwk>>& keys() const { return keys_; }

 private:
  std::vector<std::shared_ptr<const Jwk>> keys_;
  std::unordered_map<std::string, const Jwk*> by_kid_;
};

// A token split and decoded, before its signature is checked.
struct ParsedJwt {
  std::string alg;
  std::string kid;
  nlohmann::json claims;
  std::string_view signing_input;  // into the token
  std::string signature;
};

std::optional<ParsedJwt> parseJwt(std::string_view token);

struct ClaimRules {
  std::string issuer;                  // "" = not checked
  std::vector<std::string> audiences;  // any of them; empty = not checked
  std::chrono::seconds leeway{0};
  bool require_exp = true;
  // claim -> values that must all be present (a space-separated string claim such as "scope"
  // counts as a list).
  std::vector<std::pair<std::string, std::vector<std::string>>> required;
};

// A NumericDate claim (RFC 7519 §2: seconds, maybe fractional) as whole seconds, clamped to
// ±2^62: a token's 1e300 or 2^64-1 is far future, and no sum with it overflows. nullopt when
// the claim is absent or not a number.
std::optional<std::int64_t> numericDate(const nlohmann::json& claims, const char* name);

// Checks iss, aud, exp, nbf, iat and required claims at `now` (seconds since the epoch).
// Returns "" when the claims are acceptable, else a reason (for logs, never sent to clients).
std::string checkClaims(const nlohmann::json& claims, const ClaimRules& rules, std::int64_t now);

}  // namespace portico::auth
