#include "http/codec/head_parser.h"

#include <gtest/gtest.h>

namespace portico::http {
namespace {

ParseResult parse(std::string_view data, RequestHead& head, HeadLimits limits = {}) {
  return parseRequestHead(data, limits, head);
}

int errorOf(std::string_view data, HeadLimits limits = {}) {
  RequestHead head;
  auto r = parse(data, head, limits);
  return r.status == ParseStatus::Error ? r.error_status : 0;
}

TEST(RequestHeadParser, ParsesASimpleRequest) {
  RequestHead h;
  std::string_view req = "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.COM\r\nX-A:  v  \r\n\r\nBODY";
  auto r = parse(req, h);
  ASSERT_EQ(r.status, ParseStatus::Complete);
  EXPECT_EQ(r.consumed, req.size() - 4);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.query, "x=1");
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(*h.headers.find("x-a"), "v");
  EXPECT_EQ(h.framing, BodyFraming::None);
  EXPECT_TRUE(h.keep_alive);
}

TEST(RequestHeadParser, IncompleteUntilTheEmptyLine) {
  RequestHead h;
  std::string_view req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t i = 0; i < req.size(); ++i) {
    EXPECT_EQ(parse(req.substr(0, i), h).status, ParseStatus::Incomplete) << i;
  }
  EXPECT_EQ(parse(req, h).status, ParseStatus::Complete);
}

TEST(RequestHeadParser, Framing) {
  RequestHead h;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", h).status,
            ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::ContentLength);
  EXPECT_EQ(h.content_length, 12u);
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", h)
                .status,
            ParseStatus::Complete);
  EXPECT_EQ(h.content_length, 7u);
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", h).status,
            ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::Chunked);
}

TEST(RequestHeadParser, KeepAliveRules) {
  RequestHead h;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", h).status,
            ParseStatus::Complete);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", h).status, ParseStatus::Complete);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", h).status,
            ParseStatus::Complete);
  EXPECT_TRUE(h.keep_alive);
}

TEST(RequestHeadParser, AbsoluteFormAndDotSegments) {
  RequestHead h;
  ASSERT_EQ(parse("GET http://Other.example:81/x/../y?q HTTP/1.1\r\nHost: a\r\n\r\n", h).status,
            ParseStatus::Complete);
  EXPECT_EQ(h.host, "other.example:81");
  EXPECT_EQ(h.path, "/y");
  EXPECT_EQ(h.target, "/y?q");
  ASSERT_EQ(parse("GET /a/./b/../c/ HTTP/1.1\r\nHost: a\r\n\r\n", h).status, ParseStatus::Complete);
  EXPECT_EQ(h.path, "/a/c/");
  // Escaped dots are dots: routing sees the path the upstream resolves, and so does the upstream.
  ASSERT_EQ(parse("GET /public/%2E%2e/admin?x=%2E HTTP/1.1\r\nHost: a\r\n\r\n", h).status,
            ParseStatus::Complete);
  EXPECT_EQ(h.path, "/admin");
  EXPECT_EQ(h.target, "/admin?x=%2E");  // the query is not the path's to normalise
  EXPECT_EQ(errorOf("GET /a/%2E%2E/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET /p/%2%45%2%45/admin HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET /p/..%2Fadmin HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(RequestHeadParser, RefusesMalformedInput) {
  EXPECT_EQ(errorOf("GET / HTTP/1.1\nHost: a\n\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET /../x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

// Field values are checked eight bytes at a time: a control character or DEL is refused at
// any position of any length, HTAB and obs-text are taken.
TEST(RequestHeadParser, FieldValueCharactersAtEveryPosition) {
  for (std::size_t len = 1; len <= 24; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int v : {0x00, 0x01, 0x08, 0x09, 0x0b, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff}) {
        std::string value(len, 'v');
        value[pos] = static_cast<char>(v);
        const std::string req = "GET / HTTP/1.1\r\nHost: a\r\nX-V: " + value + "\r\n\r\n";
        const bool ok = v == 0x09 || (v >= 0x20 && v != 0x7f);
        ASSERT_EQ(errorOf(req), ok ? 0 : 400) << len << " " << pos << " " << v;
      }
    }
  }
}

// Header names: token characters only; every byte value at every position of names up to 20
// long. A colon ends the name (the rest is the value), so it is refused only in first position.
TEST(RequestHeadParser, FieldNameCharactersAtEveryPosition) {
  const std::string_view specials = "!#$%&'*+-.^_`|~";
  for (std::size_t len = 1; len <= 20; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int v = 0; v < 256; ++v) {
        if (v == '\r' || v == '\n') continue;  // line structure, tested elsewhere
        std::string name(len, pos % 2 ? 'N' : 'n');
        for (std::size_t k = 0; k < len; k += 3) name[k] = static_cast<char>('0' + k % 10);
        name[pos] = static_cast<char>(v);
        const std::string req = "GET / HTTP/1.1\r\nHost: a\r\n" + name + ": v\r\n\r\n";
        const auto c = static_cast<char>(v);
        const bool tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                           (c >= 'A' && c <= 'Z') || specials.find(c) != std::string_view::npos;
        const bool ok = tchar || (c == ':' && pos > 0);
        ASSERT_EQ(errorOf(req), ok ? 0 : 400) << len << " " << pos << " " << v;
      }
    }
  }
}

// Methods: token characters but lower-case letters (`delete` would miss a route listing
// DELETE and reach an upstream that upper-cases methods as DELETE).
TEST(RequestHeadParser, MethodCharactersAtEveryPosition) {
  const std::string_view specials = "!#$%&'*+-.^_`|~";
  for (std::size_t len = 1; len <= 10; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int v = 0; v < 256; ++v) {
        if (v == ' ' || v == '\r' || v == '\n') continue;  // the request line's structure
        std::string method(len, 'M');
        method[pos] = static_cast<char>(v);
        const auto c = static_cast<char>(v);
        const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                        specials.find(c) != std::string_view::npos;
        ASSERT_EQ(errorOf(method + " / HTTP/1.1\r\nHost: a\r\n\r\n"), ok ? 0 : 400)
            << len << " " << pos << " " << v;
      }
    }
  }
  RequestHead h;
  EXPECT_EQ(std::string_view(parse("delete /x HTTP/1.1\r\nHost: a\r\n\r\n", h).error),
            "lower-case letters in method");
  ASSERT_EQ(parse("PROPFIND /x HTTP/1.1\r\nHost: a\r\n\r\n", h).status, ParseStatus::Complete);
  EXPECT_EQ(h.method, "PROPFIND");
}

TEST(RequestHeadParser, RefusesAmbiguousFraming) {
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n"),
            400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            400);
  EXPECT_EQ(errorOf("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), 400);
}

TEST(RequestHeadParser, Limits) {
  HeadLimits limits;
  limits.max_headers = 3;
  limits.max_header_bytes = 2048;
  limits.max_uri_bytes = 100;
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
  EXPECT_EQ(
      errorOf("GET / HTTP/1.1\r\nHost: a\r\nA: " + std::string(3000, 'x') + "\r\n\r\n", limits),
      431);
  EXPECT_EQ(errorOf("GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", limits), 414);
  // A long target is refused before the head is complete.
  EXPECT_EQ(errorOf("GET /" + std::string(300, 'a'), limits), 414);
}

TEST(ResponseHeadParser, FramingRules) {
  HeadLimits limits;
  ResponseHead h;
  auto r = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", limits, false, h);
  ASSERT_EQ(r.status, ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::ContentLength);
  ASSERT_EQ(
      parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", limits, true, h).status,
      ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::None);
  EXPECT_EQ(h.content_length, 5u);
  ASSERT_EQ(parseResponseHead("HTTP/1.1 304 Not Modified\r\n\r\n", limits, false, h).status,
            ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::None);
  ASSERT_EQ(parseResponseHead("HTTP/1.0 200 OK\r\n\r\n", limits, false, h).status,
            ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::UntilClose);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(
      parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", limits, false, h)
          .status,
      ParseStatus::Complete);
  EXPECT_EQ(h.framing, BodyFraming::Chunked);
  EXPECT_EQ(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
                              "chunked\r\n\r\n",
                              limits, false, h)
                .error_status,
            502);
  EXPECT_EQ(parseResponseHead("HTTP/1.1 2000 OK\r\n\r\n", limits, false, h).error_status, 502);
  EXPECT_EQ(parseResponseHead("HTTP/1.1 200\r\n\r\n", limits, false, h).status,
            ParseStatus::Complete);
}

}  // namespace
}  // namespace portico::http
