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
#include "filters/bearer.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct BasicAuthConfig {
  std::string realm = "portico";
  config::Duration cache_ttl = std::chrono::seconds(60);
  std::uint64_t cache_size = 10000;
  bool hide_credentials = false;
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  api::Services* services = nullptr;
  std::unique_ptr<TokenCache> cache;  // verified (username, password) digests
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
    digest_ = sha256(username_ + '\0' + password_);
    Verified known;
    if (credential_ && c_.cache->find(digest_, unixNow(ctx), known) &&
        known.consumer == credential_->consumer)
      return accept(ctx);
    return api::FilterStatus::Async;  // hash off the event loop
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    c_.services->runBlocking([this, &ctx, done = std::move(done)] {
      // An unknown user pays a hash too, so that timing does not tell users apart.
      const std::string& hash =
          credential_ ? credential_->password_hash : c_.consumers->anyPasswordHash();
      const bool ok = verifyPassword(password_, hash) && credential_;
      if (ok) {
        const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(c_.cache_ttl).count();
        if (ttl > 0)
          c_.cache->add(digest_, Verified{true, credential_->consumer, {}, unixNow(ctx) + ttl});
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
        c.cache = std::make_unique<TokenCache>(c.cache_size);
        if (!c.consumers) return nullptr;
        return std::make_shared<ConfigFactory<BasicAuthFilter, BasicAuthConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
