#include "proxy/message_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/codec/head_parser.h"

namespace portico::proxy {
namespace {

http::RequestHead parse(std::string_view text) {
  http::RequestHead h;
  auto r = http::parseRequestHead(text, {}, h);
  EXPECT_EQ(r.status, http::ParseStatus::Complete);
  return h;
}

TEST(MessageWriter, UpstreamRequestDropsHopByHopAndAddsForwarding) {
  auto req = parse(
      "POST /a HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\n"
      "Keep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Forwarded-For: 10.0.0.1\r\n"
      "Via: 1.0 edge\r\nContent-Length: 3\r\nExpect: 100-continue\r\nX-Keep: yes\r\n\r\n");
  std::string out;
  writeUpstreamRequestHead(out, req, "/rewritten?q=1", ForwardInfo{"127.0.0.2", "http", "rid", {}});
  EXPECT_EQ(out,
            "POST /rewritten?q=1 HTTP/1.1\r\nHost: shop\r\nX-Keep: yes\r\n"
            "X-Forwarded-For: 10.0.0.1, 127.0.0.2\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop\r\nVia: 1.0 edge, 1.1 portico\r\nX-Request-Id: rid\r\n"
            "Content-Length: 3\r\n\r\n");
}

TEST(MessageWriter, HostCanBeReplacedForTheUpstream) {
  auto req = parse("GET / HTTP/1.1\r\nHost: public.example\r\n\r\n");
  std::string out;
  writeUpstreamRequestHead(out, req, "/", ForwardInfo{"1.2.3.4", "http", "r", "svc:8080"});
  EXPECT_NE(out.find("Host: svc:8080\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-Host: public.example\r\n"), std::string::npos);
}

TEST(MessageWriter, ChunkedRequestKeepsChunkedFraming) {
  auto req = parse("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string out;
  writeUpstreamRequestHead(out, req, "/a", ForwardInfo{"1.2.3.4", "http", "r", {}});
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
}

TEST(MessageWriter, ResponseHeadFraming) {
  http::ResponseHead resp;
  resp.status = 200;
  resp.reason = "OK";
  resp.headers.add("Content-Type", "text/plain");
  resp.headers.add("Connection", "close");
  resp.headers.add("Content-Length", "5");
  resp.framing = http::BodyFraming::ContentLength;
  resp.content_length = 5;
  std::string out;
  writeResponseHead(out, resp, ResponseFraming{});
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVia: 1.1 portico\r\n"
            "Content-Length: 5\r\n\r\n");
  out.clear();
  ResponseFraming f;
  f.keep_alive = false;
  f.chunked = true;
  writeResponseHead(out, resp, f);
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"), std::string::npos);
}

// A response's Connection header: the fields it names go (both protocols), whatever else it
// lists; naming only keep-alive, it leaves every other field alone.
TEST(MessageWriter, ResponseDropsTheFieldsItsConnectionHeaderNames) {
  http::ResponseHead resp;
  resp.status = 200;
  resp.headers.add("Connection", "keep-alive, X-Hop");
  resp.headers.add("X-Hop", "1");
  resp.headers.add("X-Keep", "2");
  resp.headers.add("Keep-Alive", "timeout=5");
  resp.framing = http::BodyFraming::None;
  std::string out;
  writeResponseHead(out, resp, ResponseFraming{});
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-Keep: 2\r\nVia: 1.1 portico\r\nContent-Length: 0\r\n\r\n");
  http::HeaderList fields;
  writeHttp2ResponseFields(fields, resp);
  EXPECT_FALSE(fields.has("x-hop"));
  EXPECT_TRUE(fields.has("x-keep"));
  EXPECT_FALSE(fields.has("keep-alive"));
  for (const auto& f : fields) {
    std::string lower = f.name;
    http::toLower(lower);
    EXPECT_EQ(f.name, lower);  // HTTP/2 field names are lower case
    EXPECT_EQ(f.id, http::classifyHeader(f.name));
  }

  resp.headers.clear();
  resp.headers.add("Connection", "Keep-Alive");
  resp.headers.add("X-Keep", "2");
  resp.headers.add("Close", "3");  // a field named like an option no Connection header names
  out.clear();
  writeResponseHead(out, resp, ResponseFraming{});
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nX-Keep: 2\r\nClose: 3\r\nVia: 1.1 portico\r\n"
            "Content-Length: 0\r\n\r\n");
  writeHttp2ResponseFields(fields, resp);
  EXPECT_TRUE(fields.has("x-keep"));
  EXPECT_TRUE(fields.has("close"));
}

// Towards an HTTP/2 upstream: pseudo-headers, lower-case names of the right class, the
// forwarding fields, no Host (it is :authority) and no hop-by-hop field.
TEST(MessageWriter, UpstreamRequestFieldsForHttp2) {
  auto req = parse(
      "POST /a HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1\r\n"
      "X-Keep: Yes\r\nTE: trailers\r\nContent-Length: 3\r\n\r\n");
  http::HeaderList out;
  writeUpstreamRequestFields(out, req, "/b", "https", ForwardInfo{"127.0.0.2", "https", "rid", {}});
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& f : out) {
    got.emplace_back(f.name, f.value);
    EXPECT_EQ(f.id, http::classifyHeader(f.name)) << f.name;
  }
  const std::vector<std::pair<std::string, std::string>> expected = {
      {":method", "POST"},
      {":scheme", "https"},
      {":authority", "shop"},
      {":path", "/b"},
      {"x-keep", "Yes"},
      {"x-forwarded-for", "10.0.0.1, 127.0.0.2"},
      {"x-forwarded-proto", "https"},
      {"x-forwarded-host", "shop"},
      {"via", "1.1 portico"},
      {"x-request-id", "rid"},
      {"te", "trailers"},
      {"content-length", "3"},
  };
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace portico::proxy
