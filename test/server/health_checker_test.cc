// Active health checks on an injected clock: a probe per target on its interval, results
// moving the target's health after the thresholds; time advances instead of passing.
#include "server/health_checker.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "api/filter_registry.h"
#include "filters/builtins.h"

namespace portico::server {
namespace {

class FakeProbeTarget : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return nullptr;
  }
  const TimeSource& time() override { return clock; }
  void fetch(api::HttpRequest req, std::function<void(api::HttpResponse)> done) override {
    urls.push_back(req.url);
    api::HttpResponse r;
    r.status = status;
    done(std::move(r));
  }
  ManualTime clock;
  std::vector<std::string> urls;
  int status = 200;
};

TEST(HealthChecker, ProbesOnItsIntervalAndMarksTargetsDownAfterTheThreshold) {
  FakeProbeTarget services;
  api::FilterRegistry registry;
  filters::registerBuiltins(registry);
  snapshot::SnapshotInputs in;
  in.text =
      "version: 1\n"
      "listeners: [ { name: m, listen: \"127.0.0.1:1\" } ]\n"
      "upstreams:\n"
      "  - name: u\n"
      "    targets: [ \"127.0.0.1:9\" ]\n"
      "    health_check: { path: /healthz, interval: 10s, unhealthy_threshold: 2 }\n"
      "routes: [ { name: r, match: { path_prefix: / }, upstream: u } ]\n";
  in.file = "t.yaml";
  in.env = [](const std::string&) { return std::optional<std::string>(); };
  in.registry = &registry;
  in.services = &services;
  auto snap = snapshot::buildSnapshot(in);
  ASSERT_TRUE(snap) << snap.error().message;

  boost::asio::io_context io;
  HealthChecker checker(io, services);
  checker.update(**snap);
  auto settle = [&] { io.run_for(std::chrono::milliseconds(120)); };
  settle();
  ASSERT_EQ(services.urls.size(), 1u);  // due at once
  EXPECT_EQ(services.urls[0], "http://127.0.0.1:9/healthz");
  settle();
  EXPECT_EQ(services.urls.size(), 1u);  // not again before its interval
  const auto& health = *(*snap)->upstreams[0].health[0];
  services.status = 500;
  services.clock.advance(std::chrono::seconds(10));
  settle();
  EXPECT_EQ(services.urls.size(), 2u);
  EXPECT_FALSE(health.activeDown());  // one failure of two
  services.clock.advance(std::chrono::seconds(10));
  settle();
  EXPECT_EQ(services.urls.size(), 3u);
  EXPECT_TRUE(health.activeDown());
}

}  // namespace
}  // namespace portico::server
