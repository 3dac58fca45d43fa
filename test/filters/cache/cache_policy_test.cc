#include "filters/cache/cache_policy.h"

#include <gtest/gtest.h>

namespace portico::filters::cache {
namespace {

using std::chrono::seconds;

http::HeaderList headers(std::initializer_list<std::pair<const char*, const char*>> list) {
  http::HeaderList h;
  for (const auto& [n, v] : list) h.add(n, v);
  return h;
}

const http::SystemTime kNow = std::chrono::system_clock::from_time_t(784111777);

TEST(CachePolicy, ParsesResponseDirectives) {
  auto cc = parseCacheControl(headers({{"Cache-Control", "public, max-age=60"},
                                       {"cache-control", "s-maxage=\"30\", stale-if-error=600"},
                                       {"Cache-Control", "stale-while-revalidate=10, x=\"a,b\""}}));
  EXPECT_TRUE(cc.is_public);
  EXPECT_EQ(cc.max_age, seconds(60));
  EXPECT_EQ(cc.s_maxage, seconds(30));
  EXPECT_EQ(cc.stale_if_error, seconds(600));
  EXPECT_EQ(cc.stale_while_revalidate, seconds(10));
  EXPECT_FALSE(cc.no_store);
  EXPECT_EQ(parseCacheControl(headers({{"Cache-Control", "max-age=soon"}})).max_age, seconds(0));
}

TEST(CachePolicy, FreshnessFromTheUpstreamOrTheTtl) {
  StorePolicy p;
  p.ttl = seconds(60);
  p.stale_while_revalidate = seconds(5);
  auto d = decideStore(p, 200, headers({}), false, kNow);
  ASSERT_TRUE(d.store);
  EXPECT_EQ(d.fresh_for, seconds(60));
  EXPECT_EQ(d.stale_while_revalidate, seconds(5));

  d = decideStore(p, 200, headers({{"Cache-Control", "max-age=10, s-maxage=20"}}), false, kNow);
  EXPECT_EQ(d.fresh_for, seconds(20));  // a shared cache takes s-maxage
  d = decideStore(p, 200,
                  headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"},
                           {"Expires", "Sun, 06 Nov 1994 08:50:07 GMT"},
                           {"Age", "5"}}),
                  false, kNow);
  EXPECT_EQ(d.fresh_for, seconds(30));
  EXPECT_EQ(d.initial_age, seconds(5));
  d = decideStore(p, 200, headers({{"Cache-Control", "max-age=100, must-revalidate"}}), false,
                  kNow);
  EXPECT_EQ(d.stale_while_revalidate, seconds(0));  // never served stale

  p.honor_upstream = false;
  d = decideStore(p, 200, headers({{"Cache-Control", "max-age=10"}}), false, kNow);
  EXPECT_EQ(d.fresh_for, seconds(60));
}

TEST(CachePolicy, NeverStores) {
  StorePolicy p;
  auto reason = [&](int status, http::HeaderList h, bool authorization = false) {
    return std::string(decideStore(p, status, h, authorization, kNow).reason);
  };
  EXPECT_EQ(reason(500, headers({})), "status");
  EXPECT_EQ(reason(503, headers({})), "status");
  EXPECT_EQ(reason(302, headers({})), "status");  // not listed
  EXPECT_EQ(reason(200, headers({{"Set-Cookie", "a=b"}})), "set-cookie");
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "private"}})), "private");
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "no-store"}})), "no-store");
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "no-cache"}})), "no-cache");
  EXPECT_EQ(reason(200, headers({{"Vary", "*"}})), "vary");
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "max-age=0"}})), "expired");
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "max-age=5"}, {"Age", "9"}})), "expired");
  EXPECT_EQ(reason(200, headers({{"Expires", "0"}})), "expired");
  EXPECT_EQ(reason(200, headers({}), true), "authorization");
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "public"}}), true), "");
  p.consumer_key = true;
  EXPECT_EQ(reason(200, headers({}), true), "");
  // honor_upstream does not lift the rules above
  p.honor_upstream = false;
  EXPECT_EQ(reason(200, headers({{"Cache-Control", "private"}})), "private");
}

TEST(CachePolicy, ConditionalRequests) {
  auto stored = headers({{"ETag", "\"v1\""}, {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  EXPECT_TRUE(notModified(headers({{"If-None-Match", "\"v0\", W/\"v1\""}}), stored));
  EXPECT_TRUE(notModified(headers({{"If-None-Match", "*"}}), stored));
  EXPECT_FALSE(notModified(headers({{"If-None-Match", "\"v2\""}}), stored));
  // If-None-Match wins over If-Modified-Since
  EXPECT_FALSE(notModified(headers({{"If-None-Match", "\"v2\""},
                                    {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}),
                           stored));
  EXPECT_TRUE(
      notModified(headers({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}), stored));
  EXPECT_FALSE(
      notModified(headers({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"}}), stored));
  EXPECT_FALSE(notModified(headers({{"If-Modified-Since", "garbage"}}), stored));
  EXPECT_FALSE(notModified(headers({}), stored));
}

}  // namespace
}  // namespace portico::filters::cache
