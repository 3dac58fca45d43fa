#include "http2/client_codec.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <map>
#include <string>

#include "http2/server_codec.h"

namespace portico::http2 {
namespace {

// The client codec against the server codec, bytes passed in memory both ways.
struct Upstream : ServerCodec::Handler {
  ServerCodec* codec = nullptr;
  std::map<std::int32_t, Request> requests;
  std::map<std::int32_t, std::string> bodies;
  std::map<std::int32_t, bool> ended;
  void onRequest(std::int32_t s, Request& r, bool end) override {
    requests[s] = r;
    ended[s] = end;
  }
  void onRequestData(std::int32_t s, std::string_view d) override {
    bodies[s].append(d);
    codec->consume(s, d.size());
  }
  void onRequestEnd(std::int32_t s) override { ended[s] = true; }
  void onStreamClosed(std::int32_t, std::uint32_t) override {}
};

struct Downstream : ClientCodec::Handler {
  ClientCodec* codec = nullptr;
  bool consume = true;
  std::map<std::int32_t, int> status;
  std::map<std::int32_t, http::HeaderList> fields;
  std::map<std::int32_t, std::string> bodies;
  std::map<std::int32_t, http::HeaderList> trailers;
  std::map<std::int32_t, bool> ended;
  std::map<std::int32_t, std::uint32_t> closed;
  void onResponseHead(std::int32_t s, int st, http::HeaderList f) override {
    status[s] = st;
    fields[s] = std::move(f);
  }
  void onResponseData(std::int32_t s, std::string_view d) override {
    bodies[s].append(d);
    if (consume) codec->consume(s, d.size());
  }
  void onResponseTrailers(std::int32_t s, http::HeaderList t) override {
    trailers[s] = std::move(t);
  }
  void onResponseEnd(std::int32_t s) override { ended[s] = true; }
  void onStreamClosed(std::int32_t s, std::uint32_t code) override { closed[s] = code; }
};

class ClientCodecTest : public ::testing::Test {
 protected:
  ClientCodecTest() : server(up, Limits{}), client(down, ClientLimits{}) {
    up.codec = &server;
    down.codec = &client;
    server.receive(kPreface, Clock::now());  // the client codec sends it with its SETTINGS
  }

  // Moves bytes both ways until neither side has anything to send.
  void exchange() {
    for (int i = 0; i < 100; ++i) {
      auto c = client.output();
      std::string to_server(c);
      client.consumeOutput(c.size());
      auto s = server.output();
      std::string to_client(s);
      server.consumeOutput(s.size());
      if (to_server.empty() && to_client.empty()) return;
      if (!to_server.empty()) server.receive(stripPreface(to_server), Clock::now());
      if (!to_client.empty()) client.receive(to_client);
    }
  }

  std::string_view stripPreface(std::string_view bytes) {
    if (!preface_stripped_ && bytes.substr(0, kPreface.size()) == kPreface) {
      preface_stripped_ = true;
      bytes.remove_prefix(kPreface.size());
    }
    return bytes;
  }

  static http::HeaderList request(std::string_view method, std::string_view path) {
    http::HeaderList f;
    f.add(":method", method);
    f.add(":scheme", "http");
    f.add(":authority", "backend.test");
    f.add(":path", path);
    f.add("x-custom", "1");
    return f;
  }

  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Upstream up;
  Downstream down;
  ServerCodec server;
  ClientCodec client;
  bool preface_stripped_ = false;
  http::HeaderList no_fields;
};

TEST_F(ClientCodecTest, RequestResponseWithBodyAndTrailers) {
  const std::int32_t id = client.submitRequest(request("POST", "/svc/Call"), false);
  ASSERT_GT(id, 0);
  client.sendData(id, "hello ", false);
  client.sendData(id, "world", true);
  exchange();
  ASSERT_EQ(up.requests.count(id), 1u);
  EXPECT_EQ(up.requests[id].method, "POST");
  EXPECT_EQ(up.requests[id].path, "/svc/Call");
  EXPECT_EQ(up.requests[id].authority, "backend.test");
  EXPECT_EQ(*up.requests[id].headers.find("x-custom"), "1");
  EXPECT_EQ(up.bodies[id], "hello world");
  EXPECT_TRUE(up.ended[id]);

  http::HeaderList head;
  head.add("content-type", "application/grpc");
  server.respond(id, 200, head, false);
  server.sendData(id, "reply", false);
  http::HeaderList trailers;
  trailers.add("grpc-status", "0");
  server.sendTrailers(id, trailers);
  exchange();
  EXPECT_EQ(down.status[id], 200);
  EXPECT_EQ(*down.fields[id].find("content-type"), "application/grpc");
  EXPECT_EQ(down.bodies[id], "reply");
  EXPECT_EQ(*down.trailers[id].find("grpc-status"), "0");
  EXPECT_TRUE(down.ended[id]);
  EXPECT_EQ(down.closed.at(id), 0u);
  EXPECT_EQ(client.openStreams(), 0u);
}

// The fields of the HEADERS frames in `frames` (no padding, no priority), with the flags the
// encoding gave them (NGHTTP2_NV_FLAG_NO_INDEX: a literal never indexed).
std::map<std::string, std::uint8_t> headerFlags(nghttp2_hd_inflater* inflater,
                                                std::string_view frames) {
  std::map<std::string, std::uint8_t> flags;
  while (frames.size() >= 9) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(frames.data());
    const std::size_t length = (std::size_t{p[0]} << 16) | (std::size_t{p[1]} << 8) | p[2];
    if (p[3] == NGHTTP2_HEADERS) {
      auto* in = const_cast<std::uint8_t*>(p + 9);
      std::size_t left = length;
      for (;;) {
        nghttp2_nv nv;
        int inflate_flags = 0;
        const auto n = nghttp2_hd_inflate_hd2(inflater, &nv, &inflate_flags, in, left, 1);
        if (n < 0) return {};
        in += n;
        left -= static_cast<std::size_t>(n);
        if (inflate_flags & NGHTTP2_HD_INFLATE_EMIT)
          flags[std::string(reinterpret_cast<char*>(nv.name), nv.namelen)] = nv.flags;
        if (inflate_flags & NGHTTP2_HD_INFLATE_FINAL) break;
      }
      nghttp2_hd_inflate_end_headers(inflater);
    }
    frames.remove_prefix(9 + length);
  }
  return flags;
}

// Request ids are new in every request: sent as literals never indexed, they do not churn the
// upstream's HPACK table. The other fields are indexed as before.
TEST_F(ClientCodecTest, RequestIdsAreNeverIndexed) {
  exchange();  // the preface and SETTINGS, both ways
  nghttp2_hd_inflater* inflater = nullptr;
  ASSERT_EQ(nghttp2_hd_inflate_new(&inflater), 0);
  for (int i = 0; i < 2; ++i) {
    http::HeaderList fields = request("GET", "/");
    const std::string request_id = "0123456789abcdef0123456789abcde" + std::to_string(i);
    fields.add("x-request-id", request_id);
    const std::int32_t id = client.submitRequest(fields, true);
    ASSERT_GT(id, 0);
    const std::string out(client.output());
    client.consumeOutput(out.size());
    const auto flags = headerFlags(inflater, out);
    ASSERT_EQ(flags.count("x-request-id"), 1u);
    EXPECT_EQ(flags.at("x-request-id") & NGHTTP2_NV_FLAG_NO_INDEX, NGHTTP2_NV_FLAG_NO_INDEX);
    ASSERT_EQ(flags.count("x-custom"), 1u);
    EXPECT_EQ(flags.at("x-custom") & NGHTTP2_NV_FLAG_NO_INDEX, 0);
    server.receive(out, Clock::now());
    ASSERT_EQ(up.requests.count(id), 1u);
    EXPECT_EQ(*up.requests[id].headers.find("x-request-id"), request_id);
  }
  // Only x-custom (8 + 1 + 32) and :authority (10 + 12 + 32) entered the table.
  EXPECT_EQ(nghttp2_hd_inflate_get_dynamic_table_size(inflater), 41u + 54u);
  nghttp2_hd_inflate_del(inflater);
}

TEST_F(ClientCodecTest, InterimResponsesAreSkipped) {
  const std::int32_t id = client.submitRequest(request("GET", "/"), true);
  exchange();
  server.sendInterim(id, 100);
  server.respond(id, 204, no_fields, true);
  exchange();
  EXPECT_EQ(down.status[id], 204);
  EXPECT_TRUE(down.ended[id]);
}

TEST_F(ClientCodecTest, ManyStreamsShareTheConnectionUpToTheServerLimit) {
  Limits small;
  small.max_concurrent_streams = 2;
  Upstream up2;
  ServerCodec server2(up2, small);
  up2.codec = &server2;
  Downstream down2;
  ClientCodec client2(down2, ClientLimits{});
  down2.codec = &client2;
  server2.receive(kPreface, Clock::now());
  auto pump = [&] {
    for (int i = 0; i < 20; ++i) {
      std::string a(client2.output());
      client2.consumeOutput(a.size());
      std::string b(server2.output());
      server2.consumeOutput(b.size());
      if (a.empty() && b.empty()) break;
      if (!a.empty()) {
        std::string_view v = a;
        if (v.substr(0, kPreface.size()) == kPreface) v.remove_prefix(kPreface.size());
        server2.receive(v, Clock::now());
      }
      if (!b.empty()) client2.receive(b);
    }
  };
  pump();  // SETTINGS both ways
  EXPECT_GT(client2.submitRequest(request("GET", "/a"), true), 0);
  EXPECT_GT(client2.submitRequest(request("GET", "/b"), true), 0);
  EXPECT_FALSE(client2.canOpenStream());
  EXPECT_EQ(client2.submitRequest(request("GET", "/c"), true), -1);
  pump();
  EXPECT_EQ(up2.requests.size(), 2u);
}

TEST_F(ClientCodecTest, GoAwayStopsNewStreams) {
  exchange();
  EXPECT_TRUE(client.canOpenStream());
  server.goAway();
  exchange();
  EXPECT_FALSE(client.canOpenStream());
  EXPECT_EQ(client.submitRequest(request("GET", "/"), true), -1);
}

TEST_F(ClientCodecTest, ResponseWindowOpensOnlyWhenConsumed) {
  down.consume = false;
  const std::int32_t id = client.submitRequest(request("GET", "/big"), true);
  exchange();
  server.respond(id, 200, no_fields, false);
  server.sendData(id, std::string(3 * 1024 * 1024, 'x'), true);
  exchange();
  // The stream window (1 MiB) bounds what arrives until the consumer lets more in.
  EXPECT_EQ(down.bodies[id].size(), 1024u * 1024u);
  client.consume(id, down.bodies[id].size());
  exchange();
  EXPECT_EQ(down.bodies[id].size(), 2u * 1024u * 1024u);
}

TEST_F(ClientCodecTest, GarbageFromTheServerEndsTheConnection) {
  client.submitRequest(request("GET", "/"), true);
  exchange();
  client.receive(std::string(64, '\xff'));  // a frame over the size limit: GOAWAY
  auto out = client.output();
  bool goaway = false;
  for (std::size_t at = 0; at + 9 <= out.size();) {  // walk the frames: 3-byte length, type
    const std::size_t len = static_cast<unsigned char>(out[at]) << 16 |
                            static_cast<unsigned char>(out[at + 1]) << 8 |
                            static_cast<unsigned char>(out[at + 2]);
    goaway |= out[at + 3] == NGHTTP2_GOAWAY;
    at += 9 + len;
  }
  EXPECT_TRUE(goaway);
  client.consumeOutput(out.size());
  EXPECT_TRUE(client.wantsClose());
  EXPECT_FALSE(client.canOpenStream());
}

}  // namespace
}  // namespace portico::http2
