#include "filters/basic_auth/basic_auth_filter.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "api/services.h"
#include "auth/consumer_directory.h"
#include "config/reader.h"
#include "core/base64.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

using Clock = std::chrono::steady_clock;

// Verified (username, password) pairs by digest, with an expiry. Sharded: workers look up
// concurrently, each shard behind its own short lock.
class VerifiedCache {
 public:
  VerifiedCache(Clock::duration ttl, std::size_t capacity)
      : ttl_(ttl), per_shard_(capacity / kShards + 1) {}

  const api::Consumer* find(const std::string& digest) {
    Shard& s = shard(digest);
    std::lock_guard lock(s.mu);
    auto it = s.entries.find(digest);
    if (it == s.entries.end()) return nullptr;
    if (Clock::now() >= it->second.expires) {
      s.entries.erase(it);
      return nullptr;
    }
    return it->second.consumer;
  }

  void add(const std::string& digest, const api::Consumer* consumer) {
    if (ttl_.count() <= 0) return;
    Shard& s = shard(digest);
    std::lock_guard lock(s.mu);
    if (s.entries.size() >= per_shard_) s.entries.erase(s.entries.begin());  // bounded
    s.entries[digest] = Entry{consumer, Clock::now() + ttl_};
  }

 private:
  static constexpr std::size_t kShards = 16;
  struct Entry {
    const api::Consumer* consumer;
    Clock::time_point expires;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };
  Shard& shard(const std::string& digest) {
    return shards_[static_cast<unsigned char>(digest[0]) % kShards];
  }

  Clock::duration ttl_;
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

struct BasicAuthConfig {
  std::string realm = "portico";
  config::Duration cache_ttl = std::chrono::seconds(60);
  std::uint64_t cache_size = 10000;
  bool hide_credentials = false;
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  api::Services* services = nullptr;
  std::unique_ptr<VerifiedCache> cache;
  std::string www_authenticate;
};

bool verifyPassword(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on a coroutine's stack
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (!out || out[0] == '*') return false;
  const std::size_t n = std::strlen(out);
  return n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
}

class BasicAuthFilter final : public api::Filter {
 public:
  explicit BasicAuthFilter(const BasicAuthConfig& c) : c_(c) {}
  bool authenticates() const override { return true; }

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    const std::string* header = ctx.request->headers.find("authorization");
    constexpr std::string_view kScheme = "basic ";
    if (!header || header->size() <= kScheme.size() ||
        !http::equalsIgnoreCase(std::string_view(*header).substr(0, kScheme.size()), kScheme))
      return refuse(ctx, api::AuthFailure::MissingCredentials, c_.www_authenticate);
    std::string decoded;
    std::string_view token = std::string_view(*header).substr(kScheme.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    const auto colon = base64Decode(token, decoded) ? decoded.find(':') : std::string::npos;
    if (colon == std::string::npos)
      return refuse(ctx, api::AuthFailure::InvalidCredentials, c_.www_authenticate);
    username_ = decoded.substr(0, colon);
    password_ = decoded.substr(colon + 1);
    credential_ = c_.consumers->byUsername(username_);
    digest_ = auth::sha256(username_ + '\0' + password_);
    if (credential_) {
      if (const api::Consumer* known = c_.cache->find(digest_); known == credential_->consumer)
        return accept(ctx);
    }
    return api::FilterStatus::Async;  // hash off the event loop
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    c_.services->runBlocking([this, &ctx, done = std::move(done)] {
      // An unknown user pays a hash too, so that timing does not tell users apart.
      const std::string& hash =
          credential_ ? credential_->password_hash : c_.consumers->anyPasswordHash();
      const bool ok = verifyPassword(password_, hash) && credential_;
      if (ok) {
        c_.cache->add(digest_, credential_->consumer);
        done(accept(ctx));
      } else {
        done(refuse(ctx, api::AuthFailure::InvalidCredentials, c_.www_authenticate));
      }
    });
  }

 private:
  api::FilterStatus accept(api::RequestContext& ctx) {
    ctx.consumer = credential_->consumer;
    ctx.authenticated = true;
    if (c_.hide_credentials) ctx.request->headers.remove("authorization");
    return api::FilterStatus::Continue;
  }

  const BasicAuthConfig& c_;
  std::string username_, password_, digest_;
  const auth::BasicCredential* credential_ = nullptr;
};

}  // namespace

api::FilterType basicAuthFilterType() {
  return {
      "basic-auth", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        BasicAuthConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        r.string("realm", c.realm);
        r.duration("cache_ttl", c.cache_ttl);
        r.number("cache_size", 0, 10'000'000, c.cache_size);
        r.boolean("hide_credentials", c.hide_credentials);
        r.finish();
        for (char ch : c.realm) {
          if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
            b.diag.add(r.childPath("realm"), "must not contain quotes, backslashes or controls");
        }
        c.www_authenticate = "Basic realm=\"" + c.realm + "\", charset=\"UTF-8\"";
        c.consumers = b.consumers;
        c.services = &b.services;
        c.cache = std::make_unique<VerifiedCache>(c.cache_ttl, c.cache_size);
        if (!c.consumers) return nullptr;
        return std::make_shared<ConfigFactory<BasicAuthFilter, BasicAuthConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
