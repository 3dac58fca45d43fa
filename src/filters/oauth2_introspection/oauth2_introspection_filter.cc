#include "filters/oauth2_introspection/oauth2_introspection_filter.h"

#include "auth/consumer_directory.h"
#include "auth/jwt.h"
#include "config/reader.h"
#include "core/base64.h"
#include "core/json_field.h"
#include "filters/auth_reply.h"
#include "filters/bearer.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct IntrospectionConfig {
  std::string endpoint;
  std::string authorization;  // "Basic base64(client_id:client_secret)"
  std::string ca_file;
  std::vector<std::string> required_scopes;
  std::vector<std::string> audiences;
  std::chrono::milliseconds timeout{2000};
  std::int64_t cache_ttl = 60;           // seconds, positive answers (capped by the token's exp)
  std::int64_t negative_cache_ttl = 10;  // seconds
  bool fail_open = false;
  std::string header = "authorization";
  std::string consumer_claim;
  ClaimHeaders claims_to_headers;
  bool hide_credentials = false;
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  std::unique_ptr<TokenCache> cache;
};

// application/x-www-form-urlencoded value.
std::string formEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool hasAll(const nlohmann::json& claim, const std::vector<std::string>& wanted, bool any) {
  std::vector<std::string> have;
  if (claim.is_string()) {
    const std::string s = claim.get<std::string>();
    for (std::size_t pos = 0; pos <= s.size();) {
      auto sp = s.find(' ', pos);
      if (sp == std::string::npos) sp = s.size();
      if (sp > pos) have.push_back(s.substr(pos, sp - pos));
      pos = sp + 1;
    }
  } else if (claim.is_array()) {
    for (const auto& e : claim)
      if (e.is_string()) have.push_back(e.get<std::string>());
  }
  std::size_t found = 0;
  for (const auto& w : wanted)
    if (std::find(have.begin(), have.end(), w) != have.end()) ++found;
  return any ? found > 0 : found == wanted.size();
}

class IntrospectionFilter final : public api::Filter {
 public:
  explicit IntrospectionFilter(const IntrospectionConfig& c) : c_(c) {}
  bool authenticates() const override { return true; }

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    std::string_view token = bearerToken(ctx.request->headers, c_.header);
    if (token.empty()) return refuse(ctx, api::AuthFailure::MissingCredentials, "Bearer");
    if (token.size() > 8192) return invalid(ctx);
    token_.assign(token);
    Verified v;
    if (c_.cache->find(token_, unixNow(ctx), v)) return v.active ? accept(ctx, v) : invalid(ctx);
    return api::FilterStatus::Async;
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    if (!ctx.calls) {  // a filter run alone (unit tests): the provider cannot be reached
      done(decide(ctx, api::CallResponse{}));
      return;
    }
    // On the request's worker, pooled per origin (api/upstream_calls.h).
    api::CallRequest req;
    req.method = "POST";
    req.url = c_.endpoint;
    req.timeout = c_.timeout;
    req.ca_file = c_.ca_file;
    req.max_response_bytes = 1024 * 1024;
    req.span_name = "oauth2-introspection";
    req.headers.add("Content-Type", "application/x-www-form-urlencoded");
    req.headers.add("Accept", "application/json");
    if (!c_.authorization.empty()) req.headers.add("Authorization", c_.authorization);
    req.body = "token=" + formEncode(token_) + "&token_type_hint=access_token";
    ctx.calls->start(std::move(req), [this, &ctx, done = std::move(done)](api::CallResponse r) {
      done(decide(ctx, r));
    });
  }

 private:
  api::FilterStatus decide(api::RequestContext& ctx, const api::CallResponse& r) {
    if (r.status != 200) {
      // The provider cannot answer: the configured policy decides, nothing is cached.
      if (c_.fail_open) return api::FilterStatus::Continue;
      return unavailable(ctx, "authorization server unavailable");
    }
    auto claims = nlohmann::json::parse(r.body, nullptr, false);
    const std::int64_t now = unixNow(ctx);
    Verified v;
    bool ok = isTrue(claims, "active");
    if (ok && !c_.required_scopes.empty())
      ok = claims.contains("scope") && hasAll(claims["scope"], c_.required_scopes, false);
    if (ok && !c_.audiences.empty())
      ok = claims.contains("aud") && hasAll(claims["aud"], c_.audiences, true);
    const auto exp = ok ? auth::numericDate(claims, "exp") : std::nullopt;
    if (exp && *exp <= now) ok = false;
    if (ok) ok = fromClaims(claims, c_.consumer_claim, c_.claims_to_headers, c_.consumers.get(), v);
    if (!ok) {
      c_.cache->add(token_, Verified{false, nullptr, {}, now + c_.negative_cache_ttl});
      return invalid(ctx);
    }
    v.expires = now + c_.cache_ttl;
    if (exp) v.expires = std::min(v.expires, *exp);
    c_.cache->add(token_, v);
    return accept(ctx, v);
  }

  api::FilterStatus invalid(api::RequestContext& ctx) {
    return refuse(ctx, api::AuthFailure::InvalidCredentials, "Bearer error=\"invalid_token\"");
  }

  api::FilterStatus accept(api::RequestContext& ctx, const Verified& v) {
    applyVerified(ctx, v, c_.claims_to_headers);
    if (c_.hide_credentials) ctx.request->headers.remove(c_.header);
    return api::FilterStatus::Continue;
  }

  const IntrospectionConfig& c_;
  std::string token_;
};

}  // namespace

api::FilterType oauth2IntrospectionFilterType() {
  return {"oauth2-introspection",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            IntrospectionConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            std::string client_id, client_secret, on_failure;
            r.string("endpoint", c.endpoint, true);
            r.string("client_id", client_id);
            r.string("client_secret", client_secret);
            r.string("ca", c.ca_file);
            r.stringList("required_scopes", c.required_scopes);
            r.stringList("audiences", c.audiences);
            config::Duration timeout{2000}, ttl{60000}, negative{10000};
            r.duration("timeout", timeout);
            r.duration("cache_ttl", ttl);
            r.duration("negative_cache_ttl", negative);
            std::uint64_t cache_size = 10000;
            r.number("cache_size", 0, 10'000'000, cache_size);
            r.string("on_failure", on_failure);
            r.string("header", c.header);
            r.string("consumer_claim", c.consumer_claim);
            r.boolean("hide_credentials", c.hide_credentials);
            readClaimHeaders(r.get("claims_to_headers"), r.childPath("claims_to_headers"), b.diag,
                             c.claims_to_headers);
            r.finish();
            if (!c.endpoint.empty() && c.endpoint.rfind("http://", 0) != 0 &&
                c.endpoint.rfind("https://", 0) != 0)
              b.diag.add(r.childPath("endpoint"), "must be an http:// or https:// URL");
            if (on_failure == "fail_open") {
              c.fail_open = true;
            } else if (!on_failure.empty() && on_failure != "fail_closed") {
              b.diag.add(r.childPath("on_failure"), "expected fail_closed or fail_open");
            }
            if (!client_id.empty())
              c.authorization = "Basic " + base64Encode(client_id + ":" + client_secret);
            c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
            c.cache_ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl).count();
            c.negative_cache_ttl =
                std::chrono::duration_cast<std::chrono::seconds>(negative).count();
            c.consumers = b.consumers;
            c.cache = std::make_unique<TokenCache>(cache_size);
            return std::make_shared<ConfigFactory<IntrospectionFilter, IntrospectionConfig>>(
                std::move(c));
          }};
}

}  // namespace portico::filters
