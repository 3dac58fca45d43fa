#include "http/url.h"

#include <gtest/gtest.h>

namespace portico::http {
namespace {

TEST(AbsoluteUrl, PartsAndDefaults) {
  auto u = parseAbsoluteUrl("https://api.example.com/v1/x?y=1#frag");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "api.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->authority, "api.example.com");
  EXPECT_EQ(u->target, "/v1/x?y=1");
  auto v6 = parseAbsoluteUrl("http://[::1]:8080?q");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->authority, "[::1]:8080");
  EXPECT_EQ(v6->target, "/?q");
  EXPECT_EQ(parseAbsoluteUrl("http://h")->target, "/");
}

TEST(AbsoluteUrl, Refusals) {
  for (const char* bad : {"ftp://h/", "http://", "http://user@h/", "http://h:0/", "http://h:99999/",
                          "http://h:x/", "http://[::1/", "http://[::1]x/", "http://:80/"})
    EXPECT_FALSE(parseAbsoluteUrl(bad)) << bad;
}

}  // namespace
}  // namespace portico::http
