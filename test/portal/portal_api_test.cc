#include "portal/portal_api.h"

#include <gtest/gtest.h>

namespace portico::portal {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The portal over an entity set in memory, a clock the test moves and plain "hashes".
struct Fixture {
  store::EntitySet entities;
  std::chrono::steady_clock::time_point clock{};
  int counter = 0;
  PortalApi api;

  explicit Fixture(config::PortalConfig config = {}) : api(std::move(config), hooks(), false) {}

  PortalHooks hooks() {
    PortalHooks h;
    h.write = [this](std::vector<store::Change> changes, const std::string&, const std::string&) {
      for (auto& c : changes) entities.apply({c}, entities.revision + 1, "now");
      ++entities.revision;
      return admin::AdminResponse{200, "application/json", "{}", {}};
    };
    h.entities = [this]() -> const store::EntitySet& { return entities; };
    h.now = [this] { return clock; };
    h.utc_now = [] { return std::string("2026-12-05T00:00:00Z"); };
    h.random = [this](std::size_t n) { return std::string(n, static_cast<char>(++counter)); };
    h.hash_password = [](const std::string& p) { return "plain:" + p; };
    h.check_password = [](const std::string& p, const std::string& h) { return h == "plain:" + p; };
    return h;
  }

  admin::AdminResponse send(std::string method, std::string path, json body = nullptr,
                            std::vector<std::pair<std::string, std::string>> headers = {},
                            std::string ip = "10.0.0.1") {
    admin::AdminRequest r;
    r.method = std::move(method);
    r.path = "/portal/api" + path;
    if (!body.is_null()) r.body = body.dump();
    r.headers = std::move(headers);
    return api.handle(r, ip);
  }
  static std::string header(const admin::AdminResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers)
      if (n == name) return v;
    return "";
  }
};

const std::string kPassword = "twelve chars ok";

// Fields of the wrong type are absent ones (400 or 401), never an exception: the portal's
// handler throwing terminated the process before the admin server caught it.
TEST(PortalApi, FieldsOfTheWrongTypeAreRefusedNotThrown) {
  Fixture f;
  EXPECT_EQ(f.send("POST", "/signup", {{"email", 1}, {"password", kPassword}}).status, 400);
  EXPECT_EQ(f.send("POST", "/signup", {{"email", "a@example.com"}, {"password", {1, 2}}}).status,
            400);
  EXPECT_EQ(f.send("POST", "/login", {{"email", true}, {"password", kPassword}}).status, 401);
  EXPECT_EQ(f.send("POST", "/login", {{"email", "a@example.com"}, {"password", 5}}).status, 401);
  ASSERT_EQ(f.send("POST", "/signup", {{"email", "a@example.com"}, {"password", kPassword}}).status,
            201);
  const auto in = f.send("POST", "/login", {{"email", "a@example.com"}, {"password", kPassword}});
  ASSERT_EQ(in.status, 200);
  const std::vector<std::pair<std::string, std::string>> session = {
      {"cookie", Fixture::header(in, "Set-Cookie").substr(0, 47)},
      {"x-csrf-token", json::parse(in.body)["csrf_token"].get<std::string>()}};
  EXPECT_EQ(f.send("POST", "/apps", {{"name", 7}}, session).status, 400);
  const auto app = f.send("POST", "/apps", {{"name", "shop"}}, session);
  ASSERT_EQ(app.status, 201);
  const std::string id = json::parse(app.body)["id"].get<std::string>();
  EXPECT_EQ(
      f.send("POST", "/apps/" + id + "/subscriptions", {{"api", {}}, {"plan", 3}}, session).status,
      400);
}

TEST(PortalApi, SessionsExpireAfterIdleTimeAndRotateAtSignIn) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/signup", {{"email", "a@example.com"}, {"password", kPassword}}).status,
            201);
  const auto in = f.send("POST", "/login", {{"email", "a@example.com"}, {"password", kPassword}});
  ASSERT_EQ(in.status, 200);
  const std::string cookie = Fixture::header(in, "Set-Cookie").substr(0, 47);
  ASSERT_EQ(cookie.rfind("portico_portal=", 0), 0u);
  EXPECT_EQ(f.send("GET", "/apps", nullptr, {{"cookie", cookie}}).status, 200);
  f.clock += 29min;  // within the 30 minutes of idle time, which start again
  EXPECT_EQ(f.send("GET", "/apps", nullptr, {{"cookie", cookie}}).status, 200);
  f.clock += 29min;
  EXPECT_EQ(f.send("GET", "/apps", nullptr, {{"cookie", cookie}}).status, 200);
  f.clock += 31min;
  EXPECT_EQ(f.send("GET", "/apps", nullptr, {{"cookie", cookie}}).status, 401);
  // A new sign-in gives a new id; the one brought along is dropped.
  const auto again = f.send("POST", "/login", {{"email", "a@example.com"}, {"password", kPassword}},
                            {{"cookie", cookie}});
  EXPECT_NE(Fixture::header(again, "Set-Cookie").substr(0, 47), cookie);
}

TEST(PortalApi, FailedSignInsAreThrottledPerAccountAndPerAddress) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/signup", {{"email", "a@example.com"}, {"password", kPassword}}).status,
            201);
  for (int i = 0; i < PortalApi::kMaxFailures; ++i)
    EXPECT_EQ(f.send("POST", "/login", {{"email", "a@example.com"}, {"password", "nope"}}, {},
                     "10.0.0." + std::to_string(i))
                  .status,
              401);
  auto r = f.send("POST", "/login", {{"email", "a@example.com"}, {"password", kPassword}}, {},
                  "10.0.0.99");
  EXPECT_EQ(r.status, 429);  // the account, from any address
  EXPECT_EQ(Fixture::header(r, "Retry-After"), "901");
  // Many accounts tried from one address: that address waits too.
  for (int i = 0; i < PortalApi::kMaxFailures; ++i)
    f.send("POST", "/login",
           {{"email", "u" + std::to_string(i) + "@example.com"}, {"password", "nope"}}, {},
           "10.9.9.9");
  EXPECT_EQ(
      f.send("POST", "/login", {{"email", "b@example.com"}, {"password", "x"}}, {}, "10.9.9.9")
          .status,
      429);
  f.clock += 15min;  // the window is over
  EXPECT_EQ(f.send("POST", "/login", {{"email", "a@example.com"}, {"password", kPassword}}, {},
                   "10.0.0.99")
                .status,
            200);
}

admin::AdminResponse signInWith(Fixture& f, const std::string& email, const std::string& subject) {
  admin::AdminRequest request;
  request.method = "GET";
  request.path = "/portal/oidc/callback";
  return f.api.signInWith(request, email, subject);
}

TEST(PortalApi, OpenIdConnectSignInMakesOrLinksTheAccountAndOpensASession) {
  Fixture f;
  auto r = signInWith(f, "Dev@Example.com", "sub-1");
  ASSERT_EQ(r.status, 302);
  EXPECT_EQ(Fixture::header(r, "Location"), "/portal/account");
  const store::Entity* account = f.entities.find(store::Kind::Accounts, "dev@example.com");
  ASSERT_NE(account, nullptr);
  EXPECT_EQ(account->body, (json{{"name", "dev@example.com"}, {"oidc_subject", "sub-1"}}));
  // The session is a full one: the page's script reads its CSRF token and can write.
  const std::string cookie = Fixture::header(r, "Set-Cookie").substr(0, 47);
  const auto session = f.send("GET", "/session", nullptr, {{"cookie", cookie}});
  const json s = json::parse(session.body);
  ASSERT_EQ(s["signed_in"], true);
  EXPECT_EQ(s["email"], "dev@example.com");
  EXPECT_EQ(f.send("POST", "/apps", {{"name", "a"}},
                   {{"cookie", cookie}, {"x-csrf-token", s["csrf_token"].get<std::string>()}})
                .status,
            201);
  EXPECT_EQ(json::parse(f.send("GET", "/session").body), (json{{"signed_in", false}}));
  // No password: signing in with one fails like a wrong one.
  EXPECT_EQ(
      f.send("POST", "/login", {{"email", "dev@example.com"}, {"password", kPassword}}).status,
      401);
  // Another subject with the same email is someone else.
  EXPECT_EQ(signInWith(f, "dev@example.com", "sub-2").status, 403);
  // A local account is linked at its first sign-in through the provider; its password stays.
  ASSERT_EQ(f.send("POST", "/signup", {{"email", "b@example.com"}, {"password", kPassword}}).status,
            201);
  EXPECT_EQ(signInWith(f, "b@example.com", "sub-b").status, 302);
  EXPECT_EQ(f.entities.find(store::Kind::Accounts, "b@example.com")->body["oidc_subject"], "sub-b");
  EXPECT_EQ(f.send("POST", "/login", {{"email", "b@example.com"}, {"password", kPassword}}).status,
            200);
}

TEST(PortalApi, OpenIdConnectSignInFollowsTheSignUpPolicy) {
  config::PortalConfig closed;
  closed.signup = config::PortalConfig::Signup::Closed;
  Fixture c(closed);
  EXPECT_EQ(signInWith(c, "new@example.com", "s").status, 403);
  EXPECT_EQ(c.entities.find(store::Kind::Accounts, "new@example.com"), nullptr);

  config::PortalConfig invite;
  invite.signup = config::PortalConfig::Signup::Invite;
  Fixture i(invite);
  EXPECT_EQ(signInWith(i, "new@example.com", "s").status, 403);
  i.entities.apply({{store::Kind::Accounts, "guest@example.com",
                     json{{"name", "guest@example.com"}, {"invited", true}}}},
                   1, "now");
  EXPECT_EQ(signInWith(i, "guest@example.com", "s").status, 302);  // the invitation is claimed
  EXPECT_EQ(i.entities.find(store::Kind::Accounts, "guest@example.com")->body,
            (json{{"name", "guest@example.com"}, {"oidc_subject", "s"}}));
}

}  // namespace
}  // namespace portico::portal
