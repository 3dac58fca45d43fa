#include "portal/oidc_sign_in.h"

#include <openssl/crypto.h>

#include "admin/admin_reply.h"
#include "auth/jwt.h"
#include "core/base64.h"
#include "core/json_field.h"
#include "core/sha256.h"
#include "filters/jwt/key_source.h"
#include "http/url.h"
#include "portal/web.h"

namespace portico::portal {

using admin::AdminRequest;
using admin::AdminResponse;
using admin::failure;
using nlohmann::json;

namespace {

std::string form(std::initializer_list<std::pair<const char*, std::string>> fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += http::encodeQueryComponent(value);
  }
  return out;
}

std::string query(const AdminRequest& request, std::string_view name) {
  const auto found = http::findQueryParam(request.query, name);
  return found.found ? std::string(found.value) : "";
}

}  // namespace

OidcSignIn::OidcSignIn(config::PortalConfig::Oidc config, api::Services& services, Hooks hooks,
                       bool tls)
    : config_(std::move(config)),
      services_(services),
      hooks_(std::make_shared<const Hooks>(std::move(hooks))),
      tls_(tls) {
  filters::KeySource::Options options;
  std::string issuer = config_.issuer;
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  options.url = issuer + "/.well-known/openid-configuration";
  options.discovery = true;
  options.ca_file = config_.ca;
  keys_ = filters::KeySource::create(services_, std::move(options));
}

OidcSignIn::~OidcSignIn() = default;

std::string OidcSignIn::redirectUri(const AdminRequest& request) const {
  if (!config_.redirect_uri.empty()) return config_.redirect_uri;
  const std::string* host = request.header("host");
  if (!host || host->empty()) return "";
  return (tls_ ? "https://" : "http://") + *host + "/portal/oidc/callback";
}

AdminResponse OidcSignIn::begin(const AdminRequest& request) {
  const std::string endpoint = keys_->discovered("authorization_endpoint");
  if (endpoint.empty() || keys_->discovered("token_endpoint").empty()) {
    keys_->refreshIfStale();
    return failure(503, "the identity provider's discovery document is not read yet");
  }
  const std::string redirect = redirectUri(request);
  if (redirect.empty()) return failure(400, "a Host header is needed");
  const auto now = hooks_->now();
  if (pending_.size() >= kMaxPending)  // abandoned sign-ins go when new ones come
    std::erase_if(pending_,
                  [&](const auto& p) { return now - p.second.started > kPendingLifetime; });
  if (pending_.size() >= kMaxPending) return failure(503, "too many sign-ins under way");
  const std::string state = token(16);
  Pending p{token(32), token(16), redirect, now};
  std::string scope;
  for (const auto& s : config_.scopes) scope += (scope.empty() ? "" : " ") + s;
  const std::string location = endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&") +
                               form({{"response_type", "code"},
                                     {"client_id", config_.client_id},
                                     {"redirect_uri", redirect},
                                     {"scope", scope},
                                     {"state", state},
                                     {"nonce", p.nonce},
                                     {"code_challenge", base64UrlEncode(sha256(p.verifier))},
                                     {"code_challenge_method", "S256"}});
  pending_.emplace(state, std::move(p));
  AdminResponse r = admin::answer(302, {{"location", location}});
  r.headers.emplace_back("Location", location);
  r.headers.emplace_back("Set-Cookie", std::string(kStateCookie) + "=" + state +
                                           "; Path=/portal/oidc; Max-Age=600; HttpOnly; "
                                           "SameSite=Lax" +
                                           (tls_ ? "; Secure" : ""));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

void OidcSignIn::finish(const AdminRequest& request, Done done) {
  if (const std::string error = query(request, "error"); !error.empty())
    return done(std::nullopt, failure(401, "the identity provider refused the sign-in: " + error));
  // The state must be the one this browser was given (its cookie), and still pending: a
  // callback another browser started, replayed, or older than kPendingLifetime is refused.
  const std::string state = query(request, "state");
  const std::string cookie = cookieValue(request, kStateCookie);
  const auto it = pending_.find(state);
  if (state.empty() || cookie.size() != state.size() ||
      CRYPTO_memcmp(cookie.data(), state.data(), state.size()) != 0 || it == pending_.end() ||
      hooks_->now() - it->second.started > kPendingLifetime) {
    if (it != pending_.end()) pending_.erase(it);
    return done(std::nullopt,
                failure(400, "this sign-in expired or was started elsewhere: sign in again"));
  }
  Pending pending = std::move(it->second);
  pending_.erase(it);
  const std::string code = query(request, "code");
  if (code.empty()) return done(std::nullopt, failure(400, "the callback has no code"));

  api::HttpRequest exchange;
  exchange.method = "POST";
  exchange.url = keys_->discovered("token_endpoint");
  exchange.ca_file = config_.ca;
  exchange.headers.add("Content-Type", "application/x-www-form-urlencoded");
  exchange.headers.add("Accept", "application/json");
  exchange.body = form({{"grant_type", "authorization_code"},
                        {"code", code},
                        {"redirect_uri", pending.redirect_uri},
                        {"code_verifier", pending.verifier}});
  if (config_.client_secret.empty())  // a public client names itself
    exchange.body += "&" + form({{"client_id", config_.client_id}});
  else
    exchange.headers.add(
        "Authorization",
        "Basic " + base64Encode(http::encodeQueryComponent(config_.client_id) + ":" +
                                http::encodeQueryComponent(config_.client_secret)));
  // The answer comes on the HTTP client's thread, which may outlive this object: back on the
  // control thread, only if it is still there.
  services_.fetch(std::move(exchange), [hooks = hooks_, alive = std::weak_ptr<bool>(alive_), this,
                                        pending = std::move(pending),
                                        done = std::move(done)](api::HttpResponse r) mutable {
    hooks->post([alive, this, r = std::move(r), pending = std::move(pending),
                 done = std::move(done)]() mutable {
      if (!alive.lock()) return;
      const json body = json::parse(r.body, nullptr, false);
      if (r.status != 200 || !body.is_object() || !body.contains("id_token") ||
          !body["id_token"].is_string()) {
        std::string why = r.status == 0 ? r.error : "status " + std::to_string(r.status);
        if (body.is_object() && body.contains("error") && body["error"].is_string())
          why += ", " + body["error"].get<std::string>();
        return done(std::nullopt,
                    failure(502, "the identity provider did not exchange the code (" + why + ")"));
      }
      checkIdToken(body["id_token"].get<std::string>(), pending, std::move(done), false);
    });
  });
}

void OidcSignIn::checkIdToken(const std::string& id_token, const Pending& pending, Done done,
                              bool refetched) {
  const auto jwt = auth::parseJwt(id_token);
  if (!jwt)
    return done(std::nullopt, failure(502, "the identity provider's ID token is malformed"));
  const auto keys = keys_->keys();
  const auth::Jwk* key = keys ? keys->find(jwt->kid) : nullptr;
  if (!key && !refetched)  // a key the provider rotated in since the last fetch
    return keys_->refetch([hooks = hooks_, alive = std::weak_ptr<bool>(alive_), this, id_token,
                           pending, done = std::move(done)]() mutable {
      hooks->post([alive, this, id_token = std::move(id_token), pending = std::move(pending),
                   done = std::move(done)]() mutable {
        if (alive.lock()) checkIdToken(id_token, pending, std::move(done), true);
      });
    });
  if (!key || !key->verify(jwt->alg, jwt->signing_input, jwt->signature))
    return done(std::nullopt, failure(401, "the ID token's signature does not verify"));
  auth::ClaimRules rules;
  rules.issuer = config_.issuer;
  rules.audiences = {config_.client_id};
  rules.leeway = std::chrono::seconds(60);
  if (const std::string why = auth::checkClaims(jwt->claims, rules, hooks_->unix_now());
      !why.empty())
    return done(std::nullopt, failure(401, "the ID token is not for this portal (" + why + ")"));
  const json& claims = jwt->claims;
  if (stringField(claims, "nonce") != pending.nonce)
    return done(std::nullopt, failure(401, "the ID token's nonce does not match this sign-in"));
  const std::string email = stringField(claims, "email");
  const std::string subject = stringField(claims, "sub");
  if (email.empty() || subject.empty())
    return done(std::nullopt,
                failure(403, "the identity provider gave no email (scope \"email\" is needed)"));
  if (claims.contains("email_verified") && claims["email_verified"] != true)
    return done(std::nullopt, failure(403, "the identity provider has not verified " + email));
  done(OidcIdentity{email, subject}, {});
}

std::string OidcSignIn::token(std::size_t bytes) {
  return hexToken(hooks_->random(bytes));
}

}  // namespace portico::portal
