#include "snapshot/snapshot.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "filters/builtins.h"
#include "observability/log_writer.h"

namespace portico::snapshot {
namespace {

SocketAddress v4(const std::string& ip, std::uint16_t port) {
  SocketAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &sin->sin_addr);
  a.length = sizeof(sockaddr_in);
  a.text = ip + ":" + std::to_string(port);
  return a;
}

class SnapshotTest : public ::testing::Test {
 protected:
  SnapshotTest() { filters::registerBuiltins(registry_); }

  SnapshotInputs inputs(const std::string& text) {
    SnapshotInputs in;
    in.text = text;
    in.file = "t.yaml";
    in.env = [](const std::string&) { return std::optional<std::string>(); };
    in.registry = &registry_;
    in.services = &logs_;
    in.version = 1;
    in.resolver = [this](const HostPort& hp) -> Result<std::vector<SocketAddress>> {
      auto it = dns_.find(hp.host);
      if (it == dns_.end()) return makeError("cannot resolve \"" + hp.host + "\"");
      std::vector<SocketAddress> out;
      for (const auto& ip : it->second) out.push_back(v4(ip, hp.port));
      return out;
    };
    return in;
  }

  api::FilterRegistry registry_;
  observability::LogWriter logs_;
  std::map<std::string, std::vector<std::string>> dns_;
};

constexpr const char* kConfig = R"(version: 1
listeners: [ { name: m, listen: "127.0.0.1:1" } ]
upstreams: [ { name: u, targets: [ { address: "svc.test:8080", weight: 2 } ] } ]
routes: [ { name: r, match: { path_prefix: / }, upstream: u } ]
)";

TEST_F(SnapshotTest, NameWithSeveralAddressesGivesOneTargetEach) {
  dns_["svc.test"] = {"10.0.0.1", "10.0.0.2"};
  auto snap = buildSnapshot(inputs(kConfig));
  ASSERT_TRUE(snap) << snap.error().message;
  const auto& targets = (*snap)->upstreams.at(0).targets;
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].address.text, "10.0.0.1:8080");
  EXPECT_EQ(targets[1].weight, 2u);
  EXPECT_EQ(targets[1].configured, "svc.test:8080");
}

TEST_F(SnapshotTest, RefreshPublishesOnlyWhenAddressesChange) {
  dns_["svc.test"] = {"10.0.0.1"};
  auto snap = buildSnapshot(inputs(kConfig));
  ASSERT_TRUE(snap);
  EXPECT_EQ(refreshAddresses(**snap, inputs(kConfig)), nullptr);  // nothing changed
  dns_["svc.test"] = {"10.0.0.9"};
  auto fresh = refreshAddresses(**snap, inputs(kConfig));
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->upstreams.at(0).targets.at(0).address.text, "10.0.0.9:8080");
  dns_.erase("svc.test");  // resolution failing: keep the old addresses
  EXPECT_EQ(refreshAddresses(*fresh, inputs(kConfig)), nullptr);
}

TEST_F(SnapshotTest, UnresolvableTargetIsAConfigError) {
  auto snap = buildSnapshot(inputs(kConfig));
  ASSERT_FALSE(snap);
  EXPECT_NE(snap.error().message.find("upstreams[0].targets[0]: cannot resolve \"svc.test\""),
            std::string::npos)
      << snap.error().message;
}

TEST_F(SnapshotTest, UnknownPluginAndBadPluginConfigAreReportedTogether) {
  dns_["svc.test"] = {"10.0.0.1"};
  std::string text = std::string(kConfig) + R"(plugins:
  - { name: nope }
  - { name: headers, config: { request: { set: { "bad name": x } } } }
)";
  auto snap = buildSnapshot(inputs(text));
  ASSERT_FALSE(snap);
  const auto& msg = snap.error().message;
  EXPECT_NE(msg.find("plugins[0].name: unknown plugin \"nope\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("plugins[1].config.request.set.bad name: invalid header name"),
            std::string::npos)
      << msg;
}

// Issue 17's 1,000-route row: routes with the same config of a type that depends on its config
// alone share one factory; a rate limit (counters per route) and different configs do not.
TEST_F(SnapshotTest, RoutesWithTheSameConfigShareTheFactory) {
  dns_["svc.test"] = {"10.0.0.1"};
  const std::string log = ::testing::TempDir() + "portico-shared-factory.log";
  std::string text = R"(version: 1
listeners: [ { name: m, listen: "127.0.0.1:1" } ]
upstreams: [ { name: u, targets: [ "svc.test:8080" ] } ]
consumers: [ { name: c, credentials: { key-auth: [ { key: "key-0123456789" } ] } } ]
routes:
)";
  for (const char* name : {"a", "b", "c"}) {
    const std::string hide = std::string(name) == "c" ? "true" : "false";
    text += std::string("  - name: ") + name + "\n    match: { path_prefix: /" + name +
            " }\n    upstream: u\n    plugins:\n      - { name: key-auth, config: { "
            "hide_credentials: " +
            hide + " } }\n      - { name: access-log, config: { path: \"" + log +
            "\" } }\n      - { name: rate-limit, config: { limits: [ { requests: 5, per: "
            "1s } ] } }\n";
  }
  auto snap = buildSnapshot(inputs(text));
  ASSERT_TRUE(snap) << snap.error().message;
  const auto& routes = (*snap)->routes;
  ASSERT_EQ(routes.size(), 3u);
  ASSERT_EQ(routes[0].filters.size(), 3u);
  EXPECT_EQ(routes[0].filters[0], routes[1].filters[0]);  // key-auth, same config
  EXPECT_NE(routes[0].filters[0], routes[2].filters[0]);  // hide_credentials differs
  EXPECT_EQ(routes[0].filters[1], routes[2].filters[1]);  // access-log
  EXPECT_NE(routes[0].filters[2], routes[1].filters[2]);  // rate-limit: counters per route
  std::remove(log.c_str());
}

}  // namespace
}  // namespace portico::snapshot
