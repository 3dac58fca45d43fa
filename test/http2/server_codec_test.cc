#include "http2/server_codec.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace portico::http2 {
namespace {

// Records what the codec delivers.
struct Recorder : ServerCodec::Handler {
  std::map<std::int32_t, Request> requests;
  std::map<std::int32_t, std::string> bodies;
  std::map<std::int32_t, bool> ended;
  std::map<std::int32_t, std::uint32_t> closed;
  ServerCodec* codec = nullptr;

  void onRequest(std::int32_t s, Request& r, bool end) override {
    requests[s] = r;
    if (end) ended[s] = true;
  }
  void onRequestData(std::int32_t s, std::string_view d) override {
    bodies[s].append(d);
    codec->consume(s, d.size());
  }
  void onRequestEnd(std::int32_t s) override { ended[s] = true; }
  void onStreamClosed(std::int32_t s, std::uint32_t code) override { closed[s] = code; }
};

// A real nghttp2 client session talking to the codec in memory.
class Client {
 public:
  Client() {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                const uint8_t* v, size_t vl, uint8_t, void* u) {
          auto* c = static_cast<Client*>(u);
          c->headers[f->hd.stream_id][std::string(reinterpret_cast<const char*>(n), nl)] =
              std::string(reinterpret_cast<const char*>(v), vl);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t l, void* u) {
          static_cast<Client*>(u)->bodies[id].append(reinterpret_cast<const char*>(d), l);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
          static_cast<Client*>(u)->closed[id] = code;
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          if (f->hd.type == NGHTTP2_GOAWAY) static_cast<Client*>(u)->goaway = f->goaway.error_code;
          return 0;
        });
    nghttp2_session_client_new(&session, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(session); }

  std::int32_t get(const std::string& path, const char* body = nullptr,
                   const std::vector<std::pair<std::string, std::string>>& fields = {}) {
    std::vector<nghttp2_nv> nva = {nv(":method", body ? "POST" : "GET"), nv(":scheme", "http"),
                                   nv(":authority", "example.test"), nv(":path", path),
                                   nv("user-agent", "test")};
    for (const auto& [name, value] : fields) nva.push_back(nv(name, value));
    nghttp2_data_provider prd{};
    if (body) {
      pending_body = body;
      prd.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* fl,
                             nghttp2_data_source*, void* u) -> ssize_t {
        auto* c = static_cast<Client*>(u);
        size_t n = std::min(len, c->pending_body.size());
        std::memcpy(buf, c->pending_body.data(), n);
        c->pending_body.erase(0, n);
        if (c->pending_body.empty()) *fl |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
      };
    }
    return nghttp2_submit_request(session, nullptr, nva.data(), nva.size(), body ? &prd : nullptr,
                                  nullptr);
  }

  std::string output() {
    std::string out;
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session, &data)) > 0)
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    return out;
  }
  void input(std::string_view bytes) {
    nghttp2_session_mem_recv(session, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

  static nghttp2_nv nv(const std::string& n, const std::string& v) {
    static std::deque<std::string> keep;  // stable addresses: nghttp2 reads them at submit
    keep.push_back(n);
    keep.push_back(v);
    auto& kn = keep[keep.size() - 2];
    auto& kv = keep.back();
    return {reinterpret_cast<uint8_t*>(kn.data()), reinterpret_cast<uint8_t*>(kv.data()), kn.size(),
            kv.size(), NGHTTP2_NV_FLAG_NONE};
  }

  nghttp2_session* session;
  std::map<std::int32_t, std::map<std::string, std::string>> headers;
  std::map<std::int32_t, std::string> bodies;
  std::map<std::int32_t, std::uint32_t> closed;
  std::string pending_body;
  int goaway = -1;
};

class ServerCodecTest : public ::testing::Test {
 protected:
  ServerCodecTest() : codec(recorder, Limits{}) { recorder.codec = &codec; }
  // Moves bytes both ways until neither side has anything to send.
  bool pump() {
    bool ok = true;
    for (int i = 0; i < 10; ++i) {
      std::string to_server = client.output();
      if (!to_server.empty()) ok = codec.receive(to_server, now) && ok;
      std::string_view to_client = codec.output();
      if (to_server.empty() && to_client.empty()) break;
      client.input(to_client);
      codec.consumeOutput(to_client.size());
    }
    return ok;
  }
  Recorder recorder;
  ServerCodec codec;
  Client client;
  Clock::time_point now = Clock::now();
  http::HeaderList no_fields;
};

TEST_F(ServerCodecTest, RequestsAndResponsesOnConcurrentStreams) {
  const auto a = client.get("/a");
  const auto b = client.get("/b?x=1", "hello body");
  ASSERT_TRUE(pump());
  ASSERT_EQ(recorder.requests.size(), 2u);
  EXPECT_EQ(recorder.requests[a].method, "GET");
  EXPECT_EQ(recorder.requests[a].authority, "example.test");
  EXPECT_EQ(*recorder.requests[a].headers.find("user-agent"), "test");
  EXPECT_EQ(recorder.requests[b].path, "/b?x=1");
  EXPECT_EQ(recorder.bodies[b], "hello body");
  EXPECT_TRUE(recorder.ended[a] && recorder.ended[b]);

  http::HeaderList h;
  h.add("content-type", "text/plain");
  ASSERT_TRUE(codec.respond(b, 201, h, false));
  codec.sendData(b, "part1-", false);
  ASSERT_TRUE(codec.respond(a, 204, no_fields, true));
  pump();
  codec.sendData(b, "part2", false);
  http::HeaderList trailers;
  trailers.add("grpc-status", "0");
  codec.sendTrailers(b, trailers);
  pump();
  EXPECT_EQ(client.headers[a][":status"], "204");
  EXPECT_EQ(client.headers[b][":status"], "201");
  EXPECT_EQ(client.bodies[b], "part1-part2");
  EXPECT_EQ(client.headers[b]["grpc-status"], "0");
  EXPECT_EQ(client.closed.count(a) + client.closed.count(b), 2u);
}

TEST_F(ServerCodecTest, CookieCrumbsAreJoinedIntoOneField) {
  const auto id = client.get("/", nullptr,
                             {{"cookie", "a=1"},
                              {"accept", "*/*"},
                              {"cookie", "b=2"},
                              {"set-cookie", "x=1"},
                              {"set-cookie", "y=2"}});
  ASSERT_TRUE(pump());
  const auto& fields = recorder.requests[id].headers;
  EXPECT_EQ(fields.count("cookie"), 1u);
  EXPECT_EQ(*fields.find("cookie"), "a=1; b=2");
  EXPECT_EQ(fields.count("set-cookie"), 2u);  // only Cookie is joined
}

TEST_F(ServerCodecTest, OversizedHeaderListResetsOnlyThatStream) {
  Limits small;
  small.max_header_list_bytes = 1024;
  Recorder r;
  ServerCodec c(r, small);
  r.codec = &c;
  Client cl;
  std::string big(2000, 'v');
  std::vector<nghttp2_nv> nva = {Client::nv(":method", "GET"), Client::nv(":scheme", "http"),
                                 Client::nv(":authority", "x"), Client::nv(":path", "/"),
                                 Client::nv("x-big", big)};
  auto bad = nghttp2_submit_request(cl.session, nullptr, nva.data(), nva.size(), nullptr, nullptr);
  auto good = cl.get("/ok");
  for (int i = 0; i < 5; ++i) {
    c.receive(cl.output(), Clock::now());
    auto out = c.output();
    cl.input(out);
    c.consumeOutput(out.size());
  }
  EXPECT_EQ(r.requests.count(bad), 0u);
  EXPECT_EQ(r.requests.count(good), 1u);
  EXPECT_EQ(c.stats().streams_refused, 1u);
  EXPECT_FALSE(c.wantsClose());
}

TEST_F(ServerCodecTest, RapidResetClosesTheConnectionWithGoaway) {
  bool open = true;
  for (int i = 0; i < 150 && open; ++i) {
    // HEADERS on the wire, then RST_STREAM at once: the CVE-2023-44487 pattern.
    auto id = client.get("/r");
    open = codec.receive(client.output(), now);
    nghttp2_submit_rst_stream(client.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    open = open && codec.receive(client.output(), now);
  }
  EXPECT_FALSE(open);
  pump();
  EXPECT_TRUE(codec.stats().rapid_reset);
  EXPECT_TRUE(codec.wantsClose());
  EXPECT_EQ(client.goaway, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(ServerCodecTest, GarbageIsAProtocolError) {
  EXPECT_FALSE(codec.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", now));
  EXPECT_TRUE(codec.wantsClose());
}

TEST_F(ServerCodecTest, GracefulGoawayLetsInFlightStreamsFinish) {
  auto id = client.get("/slow");
  ASSERT_TRUE(pump());
  codec.goAway();
  pump();
  EXPECT_EQ(client.goaway, NGHTTP2_NO_ERROR);
  ASSERT_TRUE(codec.respond(id, 200, no_fields, true));
  pump();
  EXPECT_EQ(client.headers[id][":status"], "200");
}

// nghttp2 encodes a response's fields from the codec's copy when it frames them, after
// respond() returned: the caller's list may be reused at once (it is, for the next stream).
TEST_F(ServerCodecTest, ResponseFieldsAreTheCodecsUntilFramed) {
  const auto a = client.get("/a");
  const auto b = client.get("/b");
  ASSERT_TRUE(pump());
  http::HeaderList fields;
  fields.add("content-type", "text/a");
  fields.add("x-one", "1");
  ASSERT_TRUE(codec.respond(a, 200, fields, true));
  fields.clear();
  fields.add("content-type", "text/b");
  ASSERT_TRUE(codec.respond(b, 404, fields, true));
  fields.clear();
  fields.add("content-type", "overwritten");
  pump();
  EXPECT_EQ(client.headers[a][":status"], "200");
  EXPECT_EQ(client.headers[a]["content-type"], "text/a");
  EXPECT_EQ(client.headers[a]["x-one"], "1");
  EXPECT_EQ(client.headers[b][":status"], "404");
  EXPECT_EQ(client.headers[b]["content-type"], "text/b");
  EXPECT_EQ(client.headers[b].count("x-one"), 0u);
}

TEST_F(ServerCodecTest, OneResponseHeadPerStream) {
  const auto id = client.get("/a");
  ASSERT_TRUE(pump());
  http::HeaderList fields;
  fields.add("content-type", "text/first");
  ASSERT_TRUE(codec.respond(id, 200, fields, false));
  fields.clear();
  fields.add("content-type", "text/second");
  EXPECT_FALSE(codec.respond(id, 500, fields, true));
  codec.sendData(id, "body", true);
  pump();
  EXPECT_EQ(client.headers[id][":status"], "200");
  EXPECT_EQ(client.headers[id]["content-type"], "text/first");
  EXPECT_EQ(client.bodies[id], "body");
}

TEST_F(ServerCodecTest, NoResponseOnAClosedStream) {
  const auto id = client.get("/a");
  ASSERT_TRUE(pump());
  nghttp2_submit_rst_stream(client.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  pump();
  http::HeaderList fields;
  fields.add("content-type", "text/plain");
  EXPECT_FALSE(codec.respond(id, 200, fields, true));
}

// The codec remembers the stream it looked up last: a closed stream whose object serves the
// next one is not found under its old id, in any order of lookups.
TEST_F(ServerCodecTest, AClosedStreamsReusedObjectIsNotFoundUnderItsOldId) {
  const auto a = client.get("/a");
  ASSERT_TRUE(pump());
  nghttp2_submit_rst_stream(client.session, NGHTTP2_FLAG_NONE, a, NGHTTP2_CANCEL);
  pump();
  const auto b = client.get("/b");
  const auto c = client.get("/c", "body");
  ASSERT_TRUE(pump());
  ASSERT_EQ(recorder.requests[b].path, "/b");
  http::HeaderList fields;
  EXPECT_FALSE(codec.respond(a, 200, fields, true));
  EXPECT_EQ(codec.pendingBytes(a), 0u);
  ASSERT_TRUE(codec.respond(c, 200, fields, false));
  codec.sendData(c, "for c", true);
  ASSERT_TRUE(codec.respond(b, 204, fields, true));
  codec.sendData(a, "for nobody", true);
  pump();
  EXPECT_EQ(client.headers.count(a), 0u);
  EXPECT_EQ(client.headers[b][":status"], "204");
  EXPECT_EQ(client.bodies[c], "for c");
  EXPECT_EQ(client.bodies.count(b), 0u);
}

// A response queued, then the stream reset before it was framed, then its stream object
// reused by the next stream, whose response replaces the fields the queued one referenced:
// the reset stream's HEADERS is dropped unread, the next stream's goes out whole.
TEST_F(ServerCodecTest, AResetStreamsQueuedResponseIsDroppedUnread) {
  const auto a = client.get("/a");
  ASSERT_TRUE(pump());
  http::HeaderList fields;
  fields.add("content-type", "text/a");
  ASSERT_TRUE(codec.respond(a, 200, fields, true));  // queued: not framed until output()
  nghttp2_submit_rst_stream(client.session, NGHTTP2_FLAG_NONE, a, NGHTTP2_CANCEL);
  ASSERT_TRUE(codec.receive(client.output(), now));
  EXPECT_EQ(recorder.closed.count(a), 1u);
  const auto b = client.get("/b");
  ASSERT_TRUE(codec.receive(client.output(), now));
  ASSERT_EQ(recorder.requests.count(b), 1u);
  fields = http::HeaderList();  // the list `a` was framed from, if it still were: gone
  fields.add("content-type", "text/b");
  ASSERT_TRUE(codec.respond(b, 201, fields, true));
  fields = http::HeaderList();
  pump();
  EXPECT_EQ(client.headers.count(a), 0u);
  EXPECT_EQ(client.headers[b][":status"], "201");
  EXPECT_EQ(client.headers[b]["content-type"], "text/b");
}

// RFC 9218: the codec tells clients it ignores RFC 7540 priorities (and nghttp2 keeps no
// priority tree, nor closed streams for it).
TEST_F(ServerCodecTest, AnnouncesNoRfc7540Priorities) {
  client.get("/a");
  ASSERT_TRUE(pump());
  EXPECT_EQ(
      nghttp2_session_get_remote_settings(client.session, NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES),
      1u);
}

// Request ids go out whole on every response and never enter the HPACK table (each would
// be a new entry, lengthening the chain nghttp2's encoder walks for later responses).
TEST_F(ServerCodecTest, RequestIdsAreSentWholeAndNeverIndexed) {
  client.get("/warm");  // SETTINGS exchanged before anything is measured
  ASSERT_TRUE(pump());
  std::vector<std::size_t> frame_bytes, table_bytes;
  for (int i = 0; i < 3; ++i) {
    const auto id = client.get("/");
    ASSERT_TRUE(codec.receive(client.output(), now));
    const std::string request_id = "0123456789abcdef0123456789abcde" + std::to_string(i);
    http::HeaderList fields;
    fields.add("content-type", "text/plain");
    fields.add("x-request-id", request_id);
    ASSERT_TRUE(codec.respond(id, 200, fields, true));
    std::string_view out = codec.output();
    frame_bytes.push_back(out.size());
    client.input(out);
    codec.consumeOutput(out.size());
    EXPECT_EQ(client.headers[id]["x-request-id"], request_id);
    table_bytes.push_back(nghttp2_session_get_hd_inflate_dynamic_table_size(client.session));
  }
  // content-type (12 + 10 + 32) only, from the first response on.
  EXPECT_EQ(table_bytes[0], 54u);
  EXPECT_EQ(table_bytes[1], 54u);
  EXPECT_EQ(table_bytes[2], 54u);
  EXPECT_LT(frame_bytes[1], frame_bytes[0]);  // content-type: an index after the first
  EXPECT_EQ(frame_bytes[2], frame_bytes[1]);
}

}  // namespace
}  // namespace portico::http2
