// libFuzzer target: what a client or an identity provider sends the JWT code. The bytes as a
// token (split, decoded, claims checked, signature checked against an HMAC, an EC and an
// Ed25519 key), as a JWK set, and as base64url. Nothing may crash, leak or be undefined, and a
// token's verdict on its claims may not depend on more than its claims.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/jwt.h"

namespace {

using portico::auth::Jwk;

std::shared_ptr<const Jwk> generatedKey(const char* type, const char* parameter) {
  EVP_PKEY* pkey = parameter ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, parameter)
                             : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string error;
  auto key = Jwk::fromPem(std::string(data, static_cast<std::size_t>(length)), error);
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  if (!key) __builtin_trap();
  return key;
}

struct Keys {
  std::vector<std::shared_ptr<const Jwk>> all{Jwk::fromSecret("0123456789abcdef0123456789abcdef"),
                                              generatedKey("EC", "P-256"),
                                              generatedKey("ED25519", nullptr)};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace portico::auth;
  static const Keys keys;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto token = parseJwt(input)) {
    if (token->signing_input.size() > input.size()) __builtin_trap();
    for (const auto& key : keys.all)
      (void)key->verify(token->alg, token->signing_input, token->signature);
    ClaimRules rules;
    (void)checkClaims(token->claims, rules, 1'700'000'000);
    rules.issuer = "https://idp.example";
    rules.audiences = {"portico", "other"};
    rules.leeway = std::chrono::seconds(3600);
    rules.require_exp = false;
    rules.required = {{"scope", {"read", "write"}}, {"roles", {"admin"}}};
    const std::string verdict = checkClaims(token->claims, rules, 1'700'000'000);
    if (verdict != checkClaims(nlohmann::json::parse(token->claims.dump()), rules, 1'700'000'000))
      __builtin_trap();
    for (const std::int64_t now : {std::int64_t{0}, std::int64_t{-1}, INT64_MAX / 2})
      (void)checkClaims(token->claims, rules, now);
  }

  const auto document = nlohmann::json::parse(input, nullptr, false);
  if (!document.is_discarded()) {
    std::string errors;
    if (auto set = KeySet::fromJwks(document, errors)) {
      for (const auto& key : set->keys()) (void)key->verify("ES256", input, input);
      (void)set->find("");
    }
    (void)Jwk::fromJson(document, errors);
  }

  std::string decoded;
  if (base64UrlDecode(input, decoded) && decoded.size() > input.size()) __builtin_trap();
  return 0;
}
