#include "auth/jwt.h"

#include <algorithm>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/json_field.h"

namespace portico::auth {

bool base64UrlDecode(std::string_view in, std::string& out) {
  out.clear();
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);  // tolerated, not required
  if (in.size() % 4 == 1) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

namespace {

const EVP_MD* digestFor(std::string_view alg) {
  if (alg.size() < 5) return nullptr;
  const std::string_view bits = alg.substr(2);
  if (bits == "256") return EVP_sha256();
  if (bits == "384") return EVP_sha384();
  if (bits == "512") return EVP_sha512();
  return nullptr;
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn bignum(const nlohmann::json& jwk, const char* field) {
  auto it = jwk.find(field);
  std::string raw;
  if (it == jwk.end() || !it->is_string() || !base64UrlDecode(it->get<std::string>(), raw) ||
      raw.empty())
    return nullptr;
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()),
                      static_cast<int>(raw.size()), nullptr));
}

EVP_PKEY* fromData(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (ctx && params && EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

// JWS ECDSA signatures are r||s; OpenSSL verifies DER.
std::string ecdsaToDer(std::string_view raw) {
  const int half = static_cast<int>(raw.size() / 2);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), half, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + half, half, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  std::string out = len > 0
                        ? std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(len))
                        : std::string();
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

}  // namespace

Jwk::~Jwk() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
}

std::shared_ptr<const Jwk> Jwk::fromSecret(std::string secret) {
  std::shared_ptr<Jwk> k(new Jwk());
  k->type_ = KeyType::Secret;
  k->secret_ = std::move(secret);
  return k;
}

std::shared_ptr<const Jwk> Jwk::fromPem(const std::string& pem, std::string& error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!pkey) {
    error = "not a PEM public key";
    return nullptr;
  }
  std::shared_ptr<Jwk> k(new Jwk());
  k->pkey_ = pkey;
  if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048) {
    k->type_ = KeyType::Rsa;
  } else if (EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_bits(pkey) == 256) {
    k->type_ = KeyType::Ec256;
  } else if (EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_bits(pkey) == 384) {
    k->type_ = KeyType::Ec384;
  } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
    k->type_ = KeyType::Ed25519;
  } else {
    error = "unsupported public key (RSA >= 2048 bits, EC P-256/P-384, Ed25519)";
    return nullptr;
  }
  return k;
}

std::shared_ptr<const Jwk> Jwk::fromJson(const nlohmann::json& jwk, std::string& error) {
  if (!jwk.is_object()) {
    error = "a key is not an object";
    return nullptr;
  }
  auto str = [&](const char* f) { return stringField(jwk, f); };
  if (str("use") == "enc") {
    error = "encryption key skipped";
    return nullptr;
  }
  std::shared_ptr<Jwk> k(new Jwk());
  k->kid_ = str("kid");
  const std::string kty = str("kty");
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (kty == "RSA") {
    Bn n = bignum(jwk, "n"), e = bignum(jwk, "e");
    if (n && e && BN_num_bits(n.get()) >= 2048) {
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n.get());
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e.get());
      k->pkey_ = fromData("RSA", bld);
    }
    k->type_ = KeyType::Rsa;
  } else if (kty == "EC") {
    const std::string crv = str("crv");
    std::string x, y;
    const std::size_t size = crv == "P-256" ? 32 : crv == "P-384" ? 48 : 0;
    if (size && base64UrlDecode(str("x"), x) && base64UrlDecode(str("y"), y) && x.size() == size &&
        y.size() == size) {
      std::string point = "\x04" + x + y;
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                      size == 32 ? "prime256v1" : "secp384r1", 0);
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
      k->pkey_ = fromData("EC", bld);
    }
    k->type_ = size == 48 ? KeyType::Ec384 : KeyType::Ec256;
  } else if (kty == "OKP" && str("crv") == "Ed25519") {
    std::string x;
    if (base64UrlDecode(str("x"), x) && x.size() == 32)
      k->pkey_ = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                             reinterpret_cast<const unsigned char*>(x.data()), 32);
    k->type_ = KeyType::Ed25519;
  } else if (kty == "oct") {
    std::string secret;
    OSSL_PARAM_BLD_free(bld);
    if (!base64UrlDecode(str("k"), secret) || secret.size() < 32) {
      error = "oct key \"" + k->kid_ + "\" shorter than 256 bits";
      return nullptr;
    }
    k->type_ = KeyType::Secret;
    k->secret_ = std::move(secret);
    return k;
  } else {
    OSSL_PARAM_BLD_free(bld);
    error = "key \"" + k->kid_ + "\": unsupported kty \"" + kty + "\"";
    return nullptr;
  }
  OSSL_PARAM_BLD_free(bld);
  if (!k->pkey_) {
    error = "key \"" + k->kid_ + "\": invalid " + kty + " parameters";
    return nullptr;
  }
  return k;
}

bool Jwk::verify(std::string_view alg, std::string_view input, std::string_view signature) const {
  const bool hmac = alg.substr(0, 2) == "HS";
  if (hmac != (type_ == KeyType::Secret)) return false;  // algorithm confusion
  if (hmac) {
    const EVP_MD* md = digestFor(alg);
    if (!md) return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md, secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return len == signature.size() && CRYPTO_memcmp(mac, signature.data(), len) == 0;
  }
  const EVP_MD* md = nullptr;
  std::string der;
  int padding = 0;
  if (alg == "EdDSA") {
    if (type_ != KeyType::Ed25519) return false;
  } else if (alg.substr(0, 2) == "RS" || alg.substr(0, 2) == "PS") {
    if (type_ != KeyType::Rsa || !(md = digestFor(alg))) return false;
    padding = alg[0] == 'P' ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
  } else if (alg == "ES256" || alg == "ES384") {
    const bool p256 = alg == "ES256";
    if (type_ != (p256 ? KeyType::Ec256 : KeyType::Ec384)) return false;
    if (signature.size() != (p256 ? 64u : 96u)) return false;
    md = digestFor(alg);
    der = ecdsaToDer(signature);
    signature = der;
  } else {
    return false;  // "none" and anything unknown
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, static_cast<EVP_PKEY*>(pkey_)) == 1;
  if (ok && padding) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, padding) == 1;
    if (ok && padding == RSA_PKCS1_PSS_PADDING)
      ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  ok = ok && EVP_DigestVerify(
                 ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                 reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

std::shared_ptr<const KeySet> KeySet::fromJwks(const nlohmann::json& jwks, std::string& errors) {
  auto set = std::make_shared<KeySet>();
  auto keys = jwks.is_object() ? jwks.find("keys") : jwks.end();
  if (!jwks.is_object() || keys == jwks.end() || !keys->is_array()) {
    errors = "not a JWK set (no \"keys\" list)";
    return nullptr;
  }
  for (const auto& j : *keys) {
    std::string error;
    if (auto key = Jwk::fromJson(j, error)) {
      set->keys_.push_back(std::move(key));
    } else {
      errors += (errors.empty() ? "" : "; ") + error;
    }
  }
  for (const auto& k : set->keys_)
    if (!k->kid().empty()) set->by_kid_.emplace(k->kid(), k.get());
  return set;
}

const Jwk* KeySet::find(std::string_view kid) const {
  if (kid.empty()) return keys_.size() == 1 ? keys_.front().get() : nullptr;
  auto it = by_kid_.find(std::string(kid));
  return it == by_kid_.end() ? nullptr : it->second;
}

std::optional<ParsedJwt> parseJwt(std::string_view token) {
  const auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  const auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return std::nullopt;
  ParsedJwt p;
  std::string header_json, payload_json;
  if (!base64UrlDecode(token.substr(0, dot1), header_json) ||
      !base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1), payload_json) ||
      !base64UrlDecode(token.substr(dot2 + 1), p.signature) || p.signature.empty())
    return std::nullopt;
  auto header = nlohmann::json::parse(header_json, nullptr, false);
  p.claims = nlohmann::json::parse(payload_json, nullptr, false);
  if (!header.is_object() || !p.claims.is_object()) return std::nullopt;
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) return std::nullopt;
  p.alg = alg->get<std::string>();
  if (auto kid = header.find("kid"); kid != header.end() && kid->is_string())
    p.kid = kid->get<std::string>();
  if (header.contains("crit")) return std::nullopt;  // no extension is understood
  p.signing_input = token.substr(0, dot2);
  return p;
}

namespace {

// The values of a claim as strings: a list, a space-separated string, or a scalar.
std::vector<std::string> claimValues(const nlohmann::json& v) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& e : v)
      if (e.is_string()) out.push_back(e.get<std::string>());
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    for (std::size_t pos = 0; pos < s.size();) {
      const auto sp = s.find(' ', pos);
      const auto end = sp == std::string::npos ? s.size() : sp;
      if (end > pos) out.push_back(s.substr(pos, end - pos));
      pos = end + 1;
    }
  } else if (v.is_number() || v.is_boolean()) {
    out.push_back(v.dump());
  }
  return out;
}

}  // namespace

std::optional<std::int64_t> numericDate(const nlohmann::json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  constexpr std::int64_t kLimit = std::int64_t{1} << 62;
  if (it->is_number_unsigned())
    return static_cast<std::int64_t>(
        std::min(it->get<std::uint64_t>(), static_cast<std::uint64_t>(kLimit)));
  if (it->is_number_integer()) return std::clamp(it->get<std::int64_t>(), -kLimit, kLimit);
  const double seconds = it->get<double>();
  if (!(seconds > -static_cast<double>(kLimit))) return -kLimit;
  if (!(seconds < static_cast<double>(kLimit))) return kLimit;
  return static_cast<std::int64_t>(seconds);
}

std::string checkClaims(const nlohmann::json& claims, const ClaimRules& rules, std::int64_t now) {
  const std::int64_t leeway = rules.leeway.count();
  for (const char* name : {"exp", "nbf", "iat"}) {
    auto it = claims.find(name);
    if (it != claims.end() && !it->is_number()) return std::string(name) + " is not a number";
  }
  const auto exp = numericDate(claims, "exp");
  if (!exp && rules.require_exp) return "no exp";
  if (exp && now - leeway > *exp) return "expired";
  if (auto nbf = numericDate(claims, "nbf"); nbf && now + leeway < *nbf) return "not yet valid";
  if (auto iat = numericDate(claims, "iat"); iat && now + leeway < *iat)
    return "issued in the future";
  if (!rules.issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || iss->get<std::string>() != rules.issuer)
      return "wrong issuer";
  }
  if (!rules.audiences.empty()) {
    auto aud = claims.find("aud");
    bool ok = false;
    if (aud != claims.end()) {
      for (const auto& a : claimValues(*aud))
        for (const auto& want : rules.audiences) ok |= a == want;
    }
    if (!ok) return "wrong audience";
  }
  for (const auto& [name, wanted] : rules.required) {
    auto it = claims.find(name);
    if (it == claims.end()) return "missing claim " + name;
    const auto have = claimValues(*it);
    for (const auto& w : wanted) {
      bool found = false;
      for (const auto& h : have) found |= h == w;
      if (!found) return "claim " + name + " lacks a required value";
    }
  }
  return {};
}

}  // namespace portico::auth
