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

TEST(UrlPath, DotSegments) {
  for (const char* dotted : {"/v1/users/..", "/v1/../x", "/.", "..", "/a/./b", "/a//.."})
    EXPECT_TRUE(hasDotSegment(dotted)) << dotted;
  for (const char* plain :
       {"/", "", "/v1/users/...", "/a.b/c", "/.well-known", "/a/%2E%2E", "/a/..b"})
    EXPECT_FALSE(hasDotSegment(plain)) << plain;
}

TEST(UrlPath, PathOfTargetAndUrl) {
  EXPECT_EQ(pathOfTarget("/a/b?c=/..#x"), "/a/b");
  EXPECT_EQ(pathOfTarget("/a#frag"), "/a");
  EXPECT_EQ(pathOfTarget("https://h:8/x/..?q"), "/x/..");
  EXPECT_EQ(pathOfTarget("http://h?q=/.."), "");
  EXPECT_EQ(pathOfTarget("http://h"), "");
}

TEST(UrlPath, NormalizeDecodesUnreservedEscapesThenRemovesDotSegments) {
  struct Case {
    const char* in;
    const char* out;
    PathNormalization result;
  };
  for (const Case& c : {
           Case{"/a/b", "/a/b", PathNormalization::Unchanged},
           Case{"/a/%2F/%25/%20/%3f", "/a/%2F/%25/%20/%3f", PathNormalization::Unchanged},
           Case{"/%7Euser/%41%62%2d%5F%2E", "/~user/Ab-_.", PathNormalization::Changed},
           Case{"/p/%2E%2E/admin", "/admin", PathNormalization::Changed},
           Case{"/p/%2e/x/", "/p/x/", PathNormalization::Changed},
           Case{"/p/../x", "/x", PathNormalization::Changed},
           Case{"/%252E%252E/x", "/%252E%252E/x", PathNormalization::Unchanged},  // decoded once
           Case{"/%2E%2E/x", "", PathNormalization::ClimbsAboveRoot},
           // Kept, `%2` would make an escape of the `E` decoded after it: `/%2E%2E/admin`.
           Case{"/p/%2%45%2%45/admin", "", PathNormalization::InvalidEscape},
           Case{"/a%", "", PathNormalization::InvalidEscape},
           Case{"/a%4", "", PathNormalization::InvalidEscape},
           Case{"/a%G1", "", PathNormalization::InvalidEscape},
           // Read by a server that decodes `%2F` (or splits on `\`), these climb.
           Case{"/public/..%2Fadmin", "", PathNormalization::EscapedDotSegment},
           Case{"/public/%2e%2E%2fadmin", "", PathNormalization::EscapedDotSegment},
           Case{"/public/x%5C..%5Cadmin", "", PathNormalization::EscapedDotSegment},
           Case{"/public/..\\admin", "", PathNormalization::EscapedDotSegment},
           Case{"/public/.%2F", "", PathNormalization::EscapedDotSegment},
           Case{"/files/%2F.config/..x%2F...", "/files/%2F.config/..x%2F...",
                PathNormalization::Unchanged},
           Case{"/a\\b", "/a\\b", PathNormalization::Unchanged},
           // Java servers drop `;parameters` from each segment before resolving the path.
           Case{"/public/..;/admin", "", PathNormalization::DotSegmentWithParameters},
           Case{"/.;/admin", "", PathNormalization::DotSegmentWithParameters},
           Case{"/public/..;jsessionid=1/admin", "", PathNormalization::DotSegmentWithParameters},
           Case{"/public/%2E%2E;/admin", "", PathNormalization::DotSegmentWithParameters},
           Case{"/a;b=1/c;d/..x;y", "/a;b=1/c;d/..x;y", PathNormalization::Unchanged},
           Case{"/a/b;c=..", "/a/b;c=..", PathNormalization::Unchanged},
       }) {
    std::string path = c.in;
    EXPECT_EQ(normalizePath(path), c.result) << c.in;
    if (c.result == PathNormalization::Unchanged || c.result == PathNormalization::Changed) {
      EXPECT_EQ(path, c.out) << c.in;
    }
  }
}

}  // namespace
}  // namespace portico::http
