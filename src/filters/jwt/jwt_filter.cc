#include "filters/jwt/jwt_filter.h"

#include <array>
#include <chrono>
#include <mutex>
#include <unordered_map>

#include "auth/consumer_directory.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/bearer.h"
#include "filters/call_span.h"
#include "filters/config_factory.h"
#include "filters/jwt/key_source.h"

namespace portico::filters {
namespace {

using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

struct JwtConfig {
  std::shared_ptr<KeySource> keys;
  auth::ClaimRules rules;
  std::vector<std::string> algorithms;
  std::string header = "authorization";  // "Bearer <token>"
  std::string query;                     // also read from this parameter ("" = no)
  std::size_t max_token_bytes = 8192;
  ClaimHeaders claims_to_headers;
  std::string consumer_claim;
  bool hide_credentials = false;
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  std::unique_ptr<TokenCache> cache;
};

class JwtFilter final : public api::Filter {
 public:
  explicit JwtFilter(const JwtConfig& c) : c_(c) {}
  bool authenticates() const override { return true; }

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    std::string_view token = bearerToken(ctx.request->headers, c_.header);
    if (token.empty() && !c_.query.empty()) {
      query_ = findQueryParam(ctx.request->query, c_.query);
      if (query_.found) {
        token = query_.value;
        maskQueryParam(ctx.original_path, c_.query);  // never logged
      }
    }
    if (token.empty()) return refuse(ctx, api::AuthFailure::MissingCredentials, "Bearer");
    if (token.size() > c_.max_token_bytes) return invalid(ctx);
    token_.assign(token);
    const std::int64_t now = unixNow(ctx);
    Verified v;
    // Keyed by the token itself: an exact match, and no digest to compute per request.
    if (c_.cache->find(token_, now, v)) return accept(ctx, v);
    if (c_.keys) c_.keys->refreshIfStale();
    auto parsed = auth::parseJwt(token_);
    if (!parsed) return invalid(ctx);
    parsed_ = std::move(*parsed);
    if (std::find(c_.algorithms.begin(), c_.algorithms.end(), parsed_.alg) == c_.algorithms.end())
      return invalid(ctx);  // alg "none", or one this route does not take
    if (const auth::JwtCredential* own = c_.consumers->byJwtKey(parsed_.kid)) {
      // A consumer's own key: that consumer, and only the algorithm it was given.
      if (parsed_.alg != own->algorithm) return invalid(ctx);
      return verifyWith(ctx, *own->key, own->consumer);
    }
    if (!c_.keys) return invalid(ctx);
    auto set = c_.keys->keys();
    if (!set) return api::FilterStatus::Async;                     // first fetch still running
    if (!set->find(parsed_.kid)) return api::FilterStatus::Async;  // maybe a rotated key
    return verify(ctx, *set);
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    // The request waits for the key source's fetch (shared with other requests): its span is
    // that wait.
    const bool first = !c_.keys->keys();
    call_span_.begin(ctx, first ? "jwt keys: first fetch" : "jwt keys: unknown kid");
    auto resume = [this, &ctx, done = std::move(done)] {
      auto set = c_.keys->keys();
      if (call_span_.active()) {
        call_span_.span().attr("url.full", c_.keys->url());
        call_span_.span().attr("portico.jwt.kid", parsed_.kid);
        call_span_.end(ctx, !set || !set->find(parsed_.kid));
      }
      done(set ? verify(ctx, *set) : invalid(ctx));
    };
    if (first) {
      c_.keys->whenLoaded(std::move(resume));
    } else {
      c_.keys->refetch(std::move(resume));  // an unknown kid: the provider may have rotated
    }
  }

 private:
  api::FilterStatus invalid(api::RequestContext& ctx) {
    return refuse(ctx, api::AuthFailure::InvalidCredentials, "Bearer error=\"invalid_token\"");
  }

  api::FilterStatus verify(api::RequestContext& ctx, const auth::KeySet& set) {
    const auth::Jwk* key = set.find(parsed_.kid);
    if (!key) return invalid(ctx);
    return verifyWith(ctx, *key, nullptr);
  }

  api::FilterStatus verifyWith(api::RequestContext& ctx, const auth::Jwk& key,
                               const api::Consumer* owner) {
    if (!key.verify(parsed_.alg, parsed_.signing_input, parsed_.signature)) return invalid(ctx);
    const std::int64_t now = unixNow(ctx);
    auth::ClaimRules rules = c_.rules;
    if (rules.issuer.empty() && c_.keys) rules.issuer = c_.keys->issuer();
    if (!auth::checkClaims(parsed_.claims, rules, now).empty()) return invalid(ctx);
    Verified v;
    if (!fromClaims(parsed_.claims, owner ? std::string() : c_.consumer_claim, c_.claims_to_headers,
                    c_.consumers.get(), v))
      return invalid(ctx);
    if (owner) v.consumer = owner;
    v.expires = auth::numericDate(parsed_.claims, "exp").value_or(now + 60);
    c_.cache->add(token_, v);
    return accept(ctx, v);
  }

  api::FilterStatus accept(api::RequestContext& ctx, const Verified& v) {
    applyVerified(ctx, v, c_.claims_to_headers);
    if (c_.hide_credentials) {
      ctx.request->headers.remove(c_.header);
      if (query_.found) eraseQueryParam(ctx.request->query, query_);
    }
    return api::FilterStatus::Continue;
  }

  const JwtConfig& c_;
  std::string token_;
  auth::ParsedJwt parsed_;
  CallSpan call_span_;
  QueryParam query_;
};

const std::vector<std::string> kAlgorithms = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                              "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"};

}  // namespace

api::FilterType jwtFilterType() {
  return {"jwt", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            JwtConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            KeySource::Options source;
            std::string jwks_uri, discovery;
            r.string("jwks_uri", jwks_uri);
            r.string("discovery", discovery);
            r.string("ca", source.ca_file);
            r.string("issuer", c.rules.issuer);
            r.stringList("audiences", c.rules.audiences);
            r.stringList("algorithms", c.algorithms);
            config::Duration leeway{0}, refresh{300000}, timeout{5000}, min_refetch{10000};
            r.duration("leeway", leeway);
            r.duration("jwks_refresh", refresh);
            r.duration("jwks_min_refetch", min_refetch);
            r.duration("timeout", timeout);
            r.boolean("require_exp", c.rules.require_exp);
            r.string("header", c.header);
            r.string("query", c.query);
            std::uint64_t max_token = c.max_token_bytes, cache_size = 10000;
            r.size("max_token_bytes", max_token);
            r.number("cache_size", 0, 10'000'000, cache_size);
            r.string("consumer_claim", c.consumer_claim);
            r.boolean("hide_credentials", c.hide_credentials);
            if (const nlohmann::json* req = r.get("required_claims")) {
              if (!req->is_object()) {
                b.diag.add(r.childPath("required_claims"), "expected a map of claim: [values]");
              } else {
                for (auto it = req->begin(); it != req->end(); ++it) {
                  std::vector<std::string> values;
                  const std::string p = config::joinPath(r.childPath("required_claims"), it.key());
                  if (it->is_string()) {
                    values.push_back(it->get<std::string>());
                  } else {
                    config::readStringList(*it, p, b.diag, values);
                  }
                  c.rules.required.emplace_back(it.key(), std::move(values));
                }
              }
            }
            readClaimHeaders(r.get("claims_to_headers"), r.childPath("claims_to_headers"), b.diag,
                             c.claims_to_headers);
            r.finish();
            if (!jwks_uri.empty() && !discovery.empty())
              b.diag.add(b.path, "give one of jwks_uri and discovery, not both");
            const bool inline_only = jwks_uri.empty() && discovery.empty();
            if (c.algorithms.empty()) c.algorithms = {"RS256", "ES256"};
            for (std::size_t i = 0; i < c.algorithms.size(); ++i) {
              if (std::find(kAlgorithms.begin(), kAlgorithms.end(), c.algorithms[i]) ==
                  kAlgorithms.end())
                b.diag.add(config::indexPath(r.childPath("algorithms"), i),
                           "unsupported algorithm \"" + c.algorithms[i] + "\"");
            }
            for (const auto& a : c.algorithms) {
              if (a.substr(0, 2) == "HS" && !inline_only)
                b.diag.add(r.childPath("algorithms"),
                           "HMAC algorithms need shared secrets, which a JWKS URI does not "
                           "publish: only with consumers' own keys (no jwks_uri/discovery)");
            }
            if (!b.diag.empty()) return nullptr;
            c.rules.leeway = std::chrono::duration_cast<std::chrono::seconds>(leeway);
            c.max_token_bytes = max_token;
            c.consumers = b.consumers;
            c.cache = std::make_unique<TokenCache>(cache_size);
            if (inline_only)  // consumers' own keys only (credentials.jwt)
              return std::make_shared<ConfigFactory<JwtFilter, JwtConfig>>(std::move(c));
            source.url = discovery.empty() ? jwks_uri : discovery;
            source.discovery = !discovery.empty();
            source.refresh_interval = refresh;
            source.min_refetch = min_refetch;
            source.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
            // One source per URL and settings: routes that agree share fetched keys.
            const std::string key = "jwt-keys|" + source.url + "|" + source.ca_file + "|" +
                                    std::to_string(refresh.count()) + "|" +
                                    std::to_string(min_refetch.count()) + "|" +
                                    std::to_string(timeout.count());
            api::Services& services = b.services;
            c.keys = std::static_pointer_cast<KeySource>(services.shared(key, [&] {
              return std::static_pointer_cast<void>(KeySource::create(services, source));
            }));
            return std::make_shared<ConfigFactory<JwtFilter, JwtConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
