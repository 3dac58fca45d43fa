// The JWKS key source's timing on an injected clock: refresh when the set is stale, refetch
// for an unknown kid at most every min_refetch, the last good set kept while the provider fails.
#include "filters/jwt/key_source.h"

#include <gtest/gtest.h>

namespace portico::filters {
namespace {

// Answers fetches with `status` and a one-key JWKS when the test says (answer()), as the HTTP
// client's thread does after the source has released its lock; counts the fetches.
class FakeProvider : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return nullptr;
  }
  const TimeSource& time() override { return clock; }
  void fetch(api::HttpRequest req, std::function<void(api::HttpResponse)> done) override {
    ++fetches;
    EXPECT_EQ(req.url, "https://id.example/jwks");
    pending.push_back(std::move(done));
  }
  void answer() {
    auto waiting = std::move(pending);
    pending.clear();
    for (auto& done : waiting) done(response());
  }
  api::HttpResponse response() const {
    api::HttpResponse r;
    r.status = status;
    // "k" decodes to 32 bytes (a 256-bit oct key).
    r.body = R"({"keys":[{"kty":"oct","kid":")" + kid +
             R"(","k":"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE"}]})";
    return r;
  }

  ManualTime clock;
  std::vector<std::function<void(api::HttpResponse)>> pending;
  int fetches = 0;
  int status = 200;
  std::string kid = "one";
};

std::shared_ptr<KeySource> source(FakeProvider& p) {
  KeySource::Options o;
  o.url = "https://id.example/jwks";
  o.refresh_interval = std::chrono::minutes(5);
  o.min_refetch = std::chrono::seconds(10);
  auto s = KeySource::create(p, o);
  p.answer();
  return s;
}

TEST(KeySourceTest, RefreshesOnlyWhenStale) {
  FakeProvider p;
  auto s = source(p);
  ASSERT_EQ(p.fetches, 1);
  ASSERT_NE(s->keys(), nullptr);
  s->refreshIfStale();
  EXPECT_EQ(p.fetches, 1);  // fresh
  p.clock.advance(std::chrono::minutes(4));
  s->refreshIfStale();
  EXPECT_EQ(p.fetches, 1);
  p.clock.advance(std::chrono::minutes(1));
  s->refreshIfStale();
  EXPECT_EQ(p.fetches, 2);  // five minutes old: fetched again
  p.answer();
}

TEST(KeySourceTest, UnknownKidRefetchesAtMostEveryMinRefetch) {
  FakeProvider p;
  auto s = source(p);
  int answered = 0;
  p.clock.advance(std::chrono::seconds(9));
  s->refetch([&] { ++answered; });
  EXPECT_EQ(p.fetches, 1);  // within min_refetch of the first fetch: answered from the set
  EXPECT_EQ(answered, 1);
  p.clock.advance(std::chrono::seconds(1));
  p.kid = "two";
  s->refetch([&] { ++answered; });
  EXPECT_EQ(p.fetches, 2);
  EXPECT_EQ(answered, 1);  // waits for the fetch
  p.answer();
  EXPECT_EQ(answered, 2);
  EXPECT_NE(s->keys()->find("two"), nullptr);
}

TEST(KeySourceTest, KeepsTheLastGoodSetWhileTheProviderFails) {
  FakeProvider p;
  auto s = source(p);
  const auto good = s->keys();
  p.status = 503;
  p.clock.advance(std::chrono::minutes(5));
  s->refreshIfStale();
  EXPECT_EQ(p.fetches, 2);
  p.answer();
  EXPECT_EQ(s->keys(), good);
  // A failed attempt counts for min_refetch, not as a success: retried after it, not after
  // the whole refresh interval.
  p.clock.advance(std::chrono::seconds(9));
  s->refreshIfStale();
  EXPECT_EQ(p.fetches, 2);
  p.clock.advance(std::chrono::seconds(1));
  s->refreshIfStale();
  EXPECT_EQ(p.fetches, 3);
}

}  // namespace
}  // namespace portico::filters
