#include "auth/consumer_directory.h"

#include <crypt.h>

#include "config/reader.h"

namespace portico::auth {

namespace {

using nlohmann::json;

// 64 hexadecimal digits as the 32 bytes they spell.
bool hexDigest(std::string_view hex, Sha256Digest& out) {
  if (hex.size() != 2 * out.size()) return false;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int byte = 0;
    for (const char c : hex.substr(i, 2)) {
      const int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (v < 0) return false;
      byte = byte * 16 + v;
    }
    out[i / 2] = static_cast<unsigned char>(byte);
  }
  return true;
}

// Reads `credentials.<method>` as a list of objects.
template <class F>
void forEachCredential(const json& creds, const std::string& path, const char* method,
                       config::Diagnostics& diag, F&& f) {
  auto it = creds.find(method);
  if (it == creds.end()) return;
  const std::string list_path = config::joinPath(path, method);
  if (!it->is_array()) {
    diag.add(list_path, "expected a list");
    return;
  }
  for (std::size_t i = 0; i < it->size(); ++i) {
    const std::string p = config::indexPath(list_path, i);
    config::ObjectReader r((*it)[i], p, diag);
    if (r.valid()) f(r, p);
  }
}

bool knownHashScheme(const std::string& hash) {
  // crypt_checksalt knows every method this libcrypt supports and flags the legacy ones.
  const int status = crypt_checksalt(hash.c_str());
  return status == CRYPT_SALT_OK;
}

}  // namespace

std::shared_ptr<const ConsumerDirectory> ConsumerDirectory::build(
    const std::vector<config::ConsumerConfig>& consumers, config::Diagnostics& diag) {
  auto dir = std::make_shared<ConsumerDirectory>();
  dir->consumers_.reserve(consumers.size());
  dir->by_name_.reserve(consumers.size());
  for (const auto& c : consumers) {
    api::Consumer& out = dir->consumers_.emplace_back();
    out.index = static_cast<std::uint32_t>(dir->consumers_.size() - 1);
    out.name = c.name;
    out.custom_id = c.custom_id.value_or("");
    out.groups = c.groups;
    for (const auto& g : c.groups) {
      if (!out.groups_joined.empty()) out.groups_joined += ',';
      out.groups_joined += g;
    }
  }
  for (std::size_t i = 0; i < consumers.size(); ++i) {
    const auto& c = consumers[i];
    const api::Consumer* consumer = &dir->consumers_[i];
    dir->by_name_.emplace(consumer->name, consumer);
    if (c.credentials.is_null()) continue;
    const std::string creds_path = config::joinPath(c.path, "credentials");
    if (!c.credentials.is_object()) {
      diag.add(creds_path, "expected a map of auth method: [credentials]");
      continue;
    }
    for (auto it = c.credentials.begin(); it != c.credentials.end(); ++it) {
      if (it.key() != "key-auth" && it.key() != "basic-auth" && it.key() != "jwt")
        diag.add(config::joinPath(creds_path, it.key()),
                 "unknown credential type (key-auth, basic-auth, jwt)");
    }
    forEachCredential(c.credentials, creds_path, "key-auth", diag,
                      [&](config::ObjectReader& r, const std::string& p) {
                        // The key, or only its SHA-256 (hex): a key shown once (the developer
                        // portal) is never stored.
                        std::string key, digest_hex, unused;
                        r.string("key", key);
                        r.string("key_sha256", digest_hex);
                        r.string("id", unused);  // the portal's handle on a key
                        r.string("created_at", unused);
                        r.finish();
                        if (key.empty() == digest_hex.empty()) {
                          diag.add(p, "give one of key, key_sha256");
                          return;
                        }
                        Sha256Digest digest;
                        const char* field = key.empty() ? "key_sha256" : "key";
                        if (!key.empty()) {
                          if (key.size() < 8) {
                            diag.add(config::joinPath(p, "key"), "must be at least 8 characters");
                            return;
                          }
                          sha256Into(key, digest);
                        } else if (!hexDigest(digest_hex, digest)) {
                          diag.add(config::joinPath(p, "key_sha256"),
                                   "must be 64 hexadecimal digits (a SHA-256)");
                          return;
                        }
                        // Never the key itself in a message: it is a secret.
                        if (!dir->by_key_.emplace(digest, consumer).second)
                          diag.add(config::joinPath(p, field), "is used by another credential");
                      });
    forEachCredential(
        c.credentials, creds_path, "basic-auth", diag,
        [&](config::ObjectReader& r, const std::string& p) {
          BasicCredential cred{consumer, {}};
          std::string username;
          r.string("username", username, true);
          r.string("password_hash", cred.password_hash, true);
          r.finish();
          if (username.empty() || cred.password_hash.empty()) return;
          if (username.find(':') != std::string::npos)
            diag.add(config::joinPath(p, "username"), "must not contain ':'");
          if (!knownHashScheme(cred.password_hash))
            diag.add(config::joinPath(p, "password_hash"),
                     "is not a crypt(3) hash this system supports ($y$, $2b$, $6$, $5$)");
          if (dir->by_username_.empty()) dir->any_hash_ = cred.password_hash;
          if (!dir->by_username_.emplace(username, std::move(cred)).second)
            diag.add(config::joinPath(p, "username"), "is used by another credential");
        });
    forEachCredential(
        c.credentials, creds_path, "jwt", diag, [&](config::ObjectReader& r, const std::string& p) {
          JwtCredential cred{consumer, nullptr, {}};
          std::string kid, secret, public_key;
          r.string("key", kid, true);
          r.string("algorithm", cred.algorithm, true);
          r.string("secret", secret);
          r.string("public_key", public_key);
          r.finish();
          if (kid.empty() || cred.algorithm.empty()) return;
          const bool hmac = cred.algorithm.rfind("HS", 0) == 0;
          std::string error;
          if (hmac && !secret.empty() && public_key.empty()) {
            if (secret.size() < 32) {
              diag.add(config::joinPath(p, "secret"), "must be at least 32 bytes");
              return;
            }
            cred.key = Jwk::fromSecret(secret);
          } else if (!hmac && !public_key.empty() && secret.empty()) {
            cred.key = Jwk::fromPem(public_key, error);
            if (!cred.key) diag.add(config::joinPath(p, "public_key"), error);
          } else {
            diag.add(p, hmac ? "an HS* algorithm takes a secret (and no public_key)"
                             : "this algorithm takes a public_key (PEM, and no secret)");
            return;
          }
          if (cred.key && !dir->by_jwt_kid_.emplace(kid, std::move(cred)).second)
            diag.add(config::joinPath(p, "key"), "is used by another credential");
        });
  }
  return dir;
}

const JwtCredential* ConsumerDirectory::byJwtKey(std::string_view kid) const {
  auto it = by_jwt_kid_.find(std::string(kid));
  return it == by_jwt_kid_.end() ? nullptr : &it->second;
}

const api::Consumer* ConsumerDirectory::byName(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const api::Consumer* ConsumerDirectory::byKey(std::string_view key) const {
  Sha256Digest digest;
  sha256Into(key, digest);
  // The map compares digests, not keys: how long a compare takes tells an attacker how much of
  // a SHA-256 digest of their own key matches a stored one, which does not lead to the key.
  const api::Consumer* const* found = by_key_.find(digest);
  return found ? *found : nullptr;
}

const BasicCredential* ConsumerDirectory::byUsername(std::string_view username) const {
  auto it = by_username_.find(std::string(username));
  return it == by_username_.end() ? nullptr : &it->second;
}

}  // namespace portico::auth
