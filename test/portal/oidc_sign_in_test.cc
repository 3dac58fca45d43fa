// OpenID Connect sign-in against a provider faked at the HTTP level: the redirect carries a
// PKCE S256 challenge of the verifier the code exchange sends, the state is bound to the
// browser and used once, and the ID token's signature, audience, nonce and email are checked.
#include "portal/oidc_sign_in.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include "core/base64.h"
#include "core/sha256.h"
#include "http/url.h"

namespace portico::portal {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
constexpr const char* kIssuer = "https://id.example";

std::string hs256(const json& header, const json& claims) {
  const std::string input = base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), len));
}

// The provider: its discovery document and keys once the test lets them through, and the
// token endpoint answering with `id_token` (or `token_status`).
class FakeProvider : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return nullptr;
  }
  void fetch(api::HttpRequest req, std::function<void(api::HttpResponse)> done) override {
    api::HttpResponse r;
    r.status = 200;
    if (req.url == std::string(kIssuer) + "/.well-known/openid-configuration") {
      if (!discoverable) {
        r.status = 0;
        r.error = "connect: refused";
      } else {
        r.body = json{{"issuer", kIssuer},
                      {"authorization_endpoint", std::string(kIssuer) + "/auth"},
                      {"token_endpoint", std::string(kIssuer) + "/token"},
                      {"jwks_uri", std::string(kIssuer) + "/jwks"}}
                     .dump();
      }
    } else if (req.url == std::string(kIssuer) + "/jwks") {
      r.body =
          json{{"keys", {{{"kty", "oct"}, {"kid", "k1"}, {"k", base64UrlEncode(kSecret)}}}}}.dump();
    } else if (req.url == std::string(kIssuer) + "/token") {
      exchange = req;
      r.status = token_status;
      r.body = token_status == 200 ? json{{"id_token", id_token}}.dump()
                                   : R"({"error":"invalid_grant"})";
    } else {
      r.status = 404;
    }
    // Answered later, as the HTTP client's thread does (the key source holds its lock while
    // it starts a fetch).
    answers.emplace_back([done = std::move(done), r = std::move(r)] { done(r); });
  }
  void pump() {
    while (!answers.empty()) {
      auto next = std::move(answers.front());
      answers.erase(answers.begin());
      next();
    }
  }

  bool discoverable = true;
  int token_status = 200;
  std::string id_token;
  api::HttpRequest exchange;
  std::vector<std::function<void()>> answers;
};

struct Fixture {
  FakeProvider provider;
  std::chrono::steady_clock::time_point clock{};
  std::int64_t unix_now = 1'800'000'000;
  int counter = 0;
  std::unique_ptr<OidcSignIn> oidc;

  explicit Fixture(bool discoverable = true) {
    provider.discoverable = discoverable;
    config::PortalConfig::Oidc c;
    c.issuer = kIssuer;
    c.client_id = "portal";
    c.client_secret = "s3cret";
    OidcSignIn::Hooks h;
    h.post = [](std::function<void()> job) { job(); };
    h.random = [this](std::size_t n) { return std::string(n, static_cast<char>(++counter)); };
    h.now = [this] { return clock; };
    h.unix_now = [this] { return unix_now; };
    oidc = std::make_unique<OidcSignIn>(c, provider, h, false);
    provider.pump();
  }

  static admin::AdminRequest get(std::string path, std::string query = "",
                                 std::string cookie = "") {
    admin::AdminRequest r;
    r.method = "GET";
    r.path = std::move(path);
    r.query = std::move(query);
    r.headers = {{"host", "portal.example:8088"}};
    if (!cookie.empty()) r.headers.emplace_back("cookie", cookie);
    return r;
  }
  static std::string header(const admin::AdminResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers)
      if (n == name) return v;
    return "";
  }
  static std::string param(const std::string& location, std::string_view name) {
    const auto q = http::findQueryParam(location.substr(location.find('?') + 1), name);
    return q.found ? std::string(q.value) : "";
  }

  // Starts a sign-in; returns the state and fills `nonce` from the redirect.
  std::string begin(std::string& nonce) {
    const auto r = oidc->begin(get("/portal/oidc/login"));
    EXPECT_EQ(r.status, 302);
    const std::string location = header(r, "Location");
    nonce = param(location, "nonce");
    return param(location, "state");
  }
  json claims(const std::string& nonce) const {
    return {{"iss", kIssuer},         {"aud", "portal"},
            {"sub", "u-1"},           {"email", "dev@example.com"},
            {"email_verified", true}, {"nonce", nonce},
            {"iat", unix_now},        {"exp", unix_now + 300}};
  }
  // The callback for `state` with the browser's cookie; what finish() gave.
  std::pair<std::optional<OidcIdentity>, admin::AdminResponse> callback(
      const std::string& state, const std::string& cookie_state) {
    std::pair<std::optional<OidcIdentity>, admin::AdminResponse> out;
    bool called = false;
    oidc->finish(get("/portal/oidc/callback", "code=c0de&state=" + state,
                     "other=1; portico_oidc=" + cookie_state),
                 [&](std::optional<OidcIdentity> who, admin::AdminResponse refusal) {
                   out = {std::move(who), std::move(refusal)};
                   called = true;
                 });
    provider.pump();
    EXPECT_TRUE(called);
    return out;
  }
};

TEST(OidcSignIn, RedirectsWithPkceAndExchangesTheCodeForAVerifiedIdentity) {
  Fixture f;
  const auto r = f.oidc->begin(Fixture::get("/portal/oidc/login"));
  ASSERT_EQ(r.status, 302);
  const std::string location = Fixture::header(r, "Location");
  EXPECT_EQ(location.rfind(std::string(kIssuer) + "/auth?response_type=code&client_id=portal", 0),
            0u)
      << location;
  EXPECT_EQ(Fixture::param(location, "redirect_uri"),
            "http://portal.example:8088/portal/oidc/callback");
  EXPECT_EQ(Fixture::param(location, "scope"), "openid email");
  EXPECT_EQ(Fixture::param(location, "code_challenge_method"), "S256");
  const std::string state = Fixture::param(location, "state");
  EXPECT_EQ(state.size(), 32u);
  EXPECT_NE(Fixture::header(r, "Set-Cookie").find("portico_oidc=" + state + "; Path=/portal/oidc"),
            std::string::npos);

  f.provider.id_token =
      hs256({{"alg", "HS256"}, {"kid", "k1"}}, f.claims(Fixture::param(location, "nonce")));
  const auto [who, refusal] = f.callback(state, state);
  ASSERT_TRUE(who) << refusal.body;
  EXPECT_EQ(who->email, "dev@example.com");
  EXPECT_EQ(who->subject, "u-1");
  // The exchange: the code, the same redirect URI, the verifier whose S256 the redirect
  // carried, and the client's credentials in Basic.
  const auto& body = f.provider.exchange.body;
  EXPECT_EQ(Fixture::param("?" + body, "code"), "c0de");
  EXPECT_EQ(Fixture::param("?" + body, "redirect_uri"),
            "http://portal.example:8088/portal/oidc/callback");
  EXPECT_EQ(base64UrlEncode(sha256(Fixture::param("?" + body, "code_verifier"))),
            Fixture::param(location, "code_challenge"));
  EXPECT_EQ(*f.provider.exchange.headers.find("authorization"),
            "Basic " + base64Encode("portal:s3cret"));
  // The state was used: the same callback again is refused.
  EXPECT_EQ(f.callback(state, state).second.status, 400);
}

TEST(OidcSignIn, RefusesForeignStaleOrForgedSignIns) {
  Fixture f;
  std::string nonce;
  // Another browser's callback (its cookie names another state).
  const std::string s1 = f.begin(nonce);
  const std::string s2 = f.begin(nonce);
  EXPECT_EQ(f.callback(s1, s2).second.status, 400);
  // Older than the pending lifetime.
  const std::string s3 = f.begin(nonce);
  f.clock += OidcSignIn::kPendingLifetime + 1s;
  EXPECT_EQ(f.callback(s3, s3).second.status, 400);
  // A token for another client, another nonce, a bad signature, no verified email.
  const auto refused = [&](json claims, std::string token = "") {
    std::string n;
    const std::string s = f.begin(n);
    auto base = f.claims(n);
    base.update(claims);
    f.provider.id_token = token.empty() ? hs256({{"alg", "HS256"}, {"kid", "k1"}}, base) : token;
    return f.callback(s, s).second;
  };
  EXPECT_EQ(refused({{"aud", "someone-else"}}).status, 401);
  EXPECT_EQ(refused({{"nonce", "not-this-one"}}).status, 401);
  EXPECT_EQ(refused({{"exp", f.unix_now - 3600}}).status, 401);
  EXPECT_EQ(refused({{"email_verified", false}}).status, 403);
  EXPECT_EQ(
      refused(json::object(), hs256({{"alg", "HS256"}, {"kid", "k1"}}, f.claims("x")) + "x").status,
      401);
  EXPECT_EQ(refused(json::object(), "not.a-token").status, 502);
  f.provider.token_status = 400;
  const auto r = refused(json::object());
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("invalid_grant"), std::string::npos);
}

TEST(OidcSignIn, WaitsForTheDiscoveryDocument) {
  Fixture f(false);
  EXPECT_EQ(f.oidc->begin(Fixture::get("/portal/oidc/login")).status, 503);
}

}  // namespace
}  // namespace portico::portal
