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
  PortalApi api{config::PortalConfig{}, hooks(), false};

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

}  // namespace
}  // namespace portico::portal
