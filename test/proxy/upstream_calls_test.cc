// The upstream-call engine on a real worker loop, against fake upstreams on the same loop.
#include "proxy/upstream_calls.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>

#include "api/filter_registry.h"
#include "filters/builtins.h"
#include "http2/client_codec.h"
#include "observability/log_writer.h"
#include "proxy/http_session.h"
#include "proxy/origin_upstreams.h"
#include "tcp_pair.h"

namespace portico::proxy {
namespace {

using boost::system::error_code;

// An HTTP/1.1 upstream on the test's loop: records each request head (and body) and answers
// with `answer`, or never answers when `hang` is set. Notes connections closed by the peer.
class FakeUpstream {
 public:
  explicit FakeUpstream(asio::io_context& io) : io_(io), acceptor_(io) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port = acceptor_.local_endpoint().port();
    asio::co_spawn(io, accept(), asio::detached);
  }
  ~FakeUpstream() {
    error_code ec;
    acceptor_.close(ec);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  std::uint16_t port = 0;
  std::vector<std::string> requests;
  std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Fake: 1\r\n\r\nhello";
  bool hang = false;
  int closed_by_peer = 0;

 private:
  Task<void> accept() {
    for (;;) {
      error_code ec;
      Socket s(io_);
      co_await acceptor_.async_accept(s, asio::redirect_error(kUseAwaitable, ec));
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(s)), asio::detached);
    }
  }
  Task<void> serve(Socket s) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      error_code ec;
      std::size_t n =
          co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(kUseAwaitable, ec));
      if (ec || n == 0) {
        ++closed_by_peer;
        co_return;
      }
      buf.append(chunk, n);
      const auto end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      std::size_t length = 0;
      if (auto cl = buf.find("Content-Length: "); cl != std::string::npos && cl < end)
        length = std::stoul(buf.substr(cl + 16));
      if (buf.size() < end + 4 + length) continue;
      requests.push_back(buf.substr(0, end + 4 + length));
      buf.erase(0, end + 4 + length);
      if (hang) continue;
      co_await asio::async_write(s, asio::buffer(answer), asio::redirect_error(kUseAwaitable, ec));
    }
  }

  asio::io_context& io_;
  Acceptor acceptor_;
};

// A filter with a bug: it throws in onRequestHeaders ("sync"), as its asynchronous phase starts
// ("start"), or in the callback of the call it makes instead of completing the phase
// ("callback"); the same in the response phase ("response-start", "response-callback").
class ThrowingFilter final : public api::Filter {
 public:
  explicit ThrowingFilter(std::string where) : where_(std::move(where)) {}
  api::FilterStatus onRequestHeaders(api::RequestContext&) override {
    if (where_ == "sync") throw std::runtime_error("thrown in onRequestHeaders");
    return inResponse() ? api::FilterStatus::Continue : api::FilterStatus::Async;
  }
  void onRequestHeadersAsync(api::RequestContext& ctx, Completion) override { fail(ctx); }
  api::FilterStatus onResponseHeaders(api::RequestContext&) override {
    return inResponse() ? api::FilterStatus::Async : api::FilterStatus::Continue;
  }
  void onResponseHeadersAsync(api::RequestContext& ctx, Completion) override { fail(ctx); }

 private:
  bool inResponse() const { return where_.starts_with("response-"); }
  void fail(api::RequestContext& ctx) {
    if (where_.ends_with("start")) throw std::runtime_error("thrown as the phase starts");
    api::CallRequest call;
    call.upstream = "u";
    ctx.calls->start(std::move(call),
                     [](api::CallResponse) { throw std::runtime_error("thrown in the callback"); });
  }

  std::string where_;
};

class ThrowingFactory final : public api::FilterFactory {
 public:
  explicit ThrowingFactory(std::string where) : where_(std::move(where)) {}
  api::FilterPtr create() const override { return api::FilterPtr(new ThrowingFilter(where_)); }

 private:
  std::string where_;
};

class CallsTest : public ::testing::Test {
 protected:
  CallsTest() : w_(io_, 0, stats_, time_), up_(io_), other_(io_) {
    filters::registerBuiltins(registry_);
    registry_.add({"test-throws", [](api::FilterBuildContext& b) {
                     return std::make_shared<const ThrowingFactory>(
                         b.config.is_string() ? b.config.get<std::string>() : "");
                   }});
    sweep();
  }

  // Calls still running end (cancelled: their coroutines finish on the loop) while the worker
  // they registered with is still there.
  ~CallsTest() override {
    calls_.end();
    runUntil([&] { return w_.sessionCount() == 0; });
  }

  // The worker's deadline sweeper, as a worker runs it, on the test's clock.
  void sweep() {
    sweeper_.expires_after(std::chrono::milliseconds(5));
    sweeper_.async_wait([this](error_code ec) {
      if (ec) return;
      const auto now = time_.coarseSteady();
      w_.forEachSession([&](SessionBase& s) { s.checkDeadline(now); });
      sweep();
    });
  }

  void load(const std::string& upstreams, const std::string& server = "",
            const std::string& more_routes = "") {
    snapshot::SnapshotInputs in;
    in.text = "version: 1\nserver: { workers: 1" + server +
              " }\nlisteners: [ { name: m, listen: \"127.0.0.1:1\" } ]\nupstreams:\n" + upstreams +
              "routes:\n  - { name: r, match: { path_prefix: / }, upstream: u }\n" + more_routes;
    in.file = "t.yaml";
    in.env = [](const std::string&) { return std::optional<std::string>(); };
    in.registry = &registry_;
    in.services = &logs_;
    auto snap = snapshot::buildSnapshot(in);
    ASSERT_TRUE(snap) << snap.error().message;
    w_.installSnapshot(*snap);
    snapshot_ = w_.snapshot;
    calls_.begin(snapshot_, nullptr);
  }

  template <class Pred>
  bool runUntil(Pred done, std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end)
      io_.run_one_for(std::chrono::milliseconds(5));
    return done();
  }

  api::UpstreamCalls::Done keep(std::optional<api::CallResponse>& out) {
    return [&out](api::CallResponse r) { out = std::move(r); };
  }

  // One call to upstream "u", run to its end: the upstream's status, or Portico's error status.
  int callOnce() {
    std::optional<api::CallResponse> got;
    api::CallRequest req;
    req.upstream = "u";
    calls_.start(std::move(req), keep(got));
    EXPECT_TRUE(runUntil([&] { return got.has_value(); }));
    return got ? (got->status ? got->status : got->error_status) : 0;
  }

  asio::io_context io_;
  observability::WorkerStats stats_;
  ManualTime time_;  // deadlines, ejections and breakers move only when a test advances it
  WorkerContext w_;
  asio::steady_timer sweeper_{io_};
  api::FilterRegistry registry_;
  observability::LogWriter logs_;
  FakeUpstream up_, other_;
  std::shared_ptr<const snapshot::Snapshot> snapshot_;  // the "request's" snapshot
  RequestCalls calls_{w_};
};

TEST_F(CallsTest, CallsAnUpstreamByNameWithItsBody) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  api::CallRequest req;
  req.upstream = "u";
  req.method = "POST";
  req.target = "/check?x=1";
  req.headers.add("X-Token", "abc");
  req.body = "payload";
  std::optional<api::CallResponse> got;
  calls_.start(std::move(req), keep(got));
  ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "hello");
  EXPECT_EQ(*got->headers.find("x-fake"), "1");
  ASSERT_EQ(up_.requests.size(), 1u);
  const std::string& sent = up_.requests[0];
  EXPECT_EQ(sent.rfind("POST /check?x=1 HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_NE(sent.find("Host: " + up_.address() + "\r\n"), std::string::npos) << sent;
  EXPECT_NE(sent.find("X-Token: abc\r\n"), std::string::npos);
  EXPECT_NE(sent.find("Content-Length: 7\r\n"), std::string::npos);
  EXPECT_EQ(sent.substr(sent.size() - 7), "payload");
  EXPECT_EQ(stats_.upstream("u").calls.get(), 1u);
  EXPECT_EQ(stats_.upstream("u").attempts.get(), 1u);
  EXPECT_EQ(calls_.running(), 0u);
}

TEST_F(CallsTest, RetriesOnTheNextTargetWhenOneIsDown) {
  // A port nothing listens on: connect refused, retried on the live target.
  Acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto dead = "127.0.0.1:" + std::to_string(probe.local_endpoint().port());
  probe.close();
  load("  - { name: u, targets: [ \"" + dead + "\", \"" + up_.address() +
       "\" ], retries: { attempts: 2 } }\n");
  int ok = 0;
  for (int i = 0; i < 4; ++i) {
    api::CallRequest req;
    req.upstream = "u";
    calls_.start(std::move(req), [&](api::CallResponse r) { ok += r.status == 200; });
  }
  ASSERT_TRUE(runUntil([&] { return ok == 4; }));
  EXPECT_EQ(up_.requests.size(), 4u);
  EXPECT_GE(stats_.upstream("u").retries.get(), 2u);
}

TEST_F(CallsTest, CancelledCallNeverCompletesAndClosesItsConnection) {
  // To the upstream directly, and through an internal route run in process.
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n", "",
       "  - { name: inner, internal: true, match: { path_prefix: / }, upstream: u }\n");
  up_.hang = true;
  for (const bool via_route : {false, true}) {
    api::CallRequest req;
    (via_route ? req.route : req.upstream) = via_route ? "inner" : "u";
    bool called = false;
    const std::size_t sent = up_.requests.size();
    const int closed = up_.closed_by_peer;
    const auto id = calls_.start(std::move(req), [&](api::CallResponse) { called = true; });
    ASSERT_TRUE(runUntil([&] { return up_.requests.size() == sent + 1; }));
    calls_.cancel(id);
    ASSERT_TRUE(runUntil([&] { return up_.closed_by_peer == closed + 1; }));
    runUntil([] { return false; }, std::chrono::milliseconds(50));
    EXPECT_FALSE(called) << via_route;
    EXPECT_EQ(up_.requests.size(), sent + 1);            // not retried: nobody wants the answer
    EXPECT_EQ(stats_.upstream("u").failures.get(), 0u);  // and no verdict on the upstream
    EXPECT_EQ(calls_.running(), 0u);
    EXPECT_EQ(w_.pool.idleCount(), 0u);  // the half-used connection is not pooled
  }
}

TEST_F(CallsTest, ClientGoneEndsCallsWith499) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  up_.hang = true;
  std::optional<api::CallResponse> got;
  api::CallRequest req;
  req.upstream = "u";
  calls_.start(std::move(req), keep(got));
  ASSERT_TRUE(runUntil([&] { return up_.requests.size() == 1; }));
  calls_.abortAll();
  ASSERT_TRUE(runUntil([&] { return got.has_value() && up_.closed_by_peer == 1; }));
  EXPECT_EQ(got->status, 0);
  EXPECT_EQ(got->error_status, 499);
}

TEST_F(CallsTest, EndedRequestCancelsAllButDetachedCalls) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  up_.hang = true;
  int completed = 0;
  api::CallRequest tied;
  tied.upstream = "u";
  calls_.start(std::move(tied), [&](api::CallResponse) { ++completed; });
  api::CallRequest detached;
  detached.upstream = "u";
  detached.detached = true;
  detached.timeout = std::chrono::milliseconds(200);
  std::optional<api::CallResponse> detached_got;
  calls_.start(std::move(detached), keep(detached_got));
  ASSERT_TRUE(runUntil([&] { return up_.requests.size() == 2; }));
  calls_.end();
  // The detached call goes on to its own deadline.
  runUntil([] { return false; }, std::chrono::milliseconds(30));
  EXPECT_FALSE(detached_got.has_value());
  time_.advance(std::chrono::milliseconds(250));
  ASSERT_TRUE(runUntil([&] { return detached_got.has_value() && up_.closed_by_peer == 2; }));
  EXPECT_EQ(detached_got->error_status, 504);
  EXPECT_EQ(completed, 0);
}

TEST_F(CallsTest, StreamedBodiesWithAndWithoutALength) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  for (const bool with_length : {true, false}) {
    api::CallRequest req;
    req.upstream = "u";
    req.method = "PUT";
    if (with_length) req.body_length = 10;
    const std::size_t before = up_.requests.size();
    std::optional<api::CallResponse> got;
    auto [body, id] = calls_.startStreamed(std::move(req), keep(got));
    ASSERT_NE(body, nullptr);
    runUntil([] { return false; }, std::chrono::milliseconds(20));
    EXPECT_FALSE(got.has_value());  // the upstream still waits for the body
    EXPECT_TRUE(body->write("hello"));
    runUntil([] { return false; }, std::chrono::milliseconds(20));
    EXPECT_TRUE(body->write("world"));
    body->end();
    ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
    EXPECT_EQ(got->status, 200);
    ASSERT_GT(up_.requests.size(), before);
    const std::string& sent = up_.requests[before];
    if (with_length) {
      EXPECT_NE(sent.find("Content-Length: 10\r\n"), std::string::npos) << sent;
      EXPECT_EQ(sent.substr(sent.size() - 10), "helloworld");
    } else {
      EXPECT_NE(sent.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << sent;
    }
  }
  // The fake reads chunked bodies only as far as their head (the chunks are the engine's
  // framing, checked by the decoder that forwarded them); the e2e mirror test reads them whole.
}

TEST_F(CallsTest, AbortedStreamedBodyFailsTheCall) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  api::CallRequest req;
  req.upstream = "u";
  req.body_length = 100;
  std::optional<api::CallResponse> got;
  auto body = calls_.startStreamed(std::move(req), keep(got)).first;
  EXPECT_TRUE(body->write("partial"));
  EXPECT_FALSE(body->write(std::string(api::BodyWriter::kMaxPending, 'x')));  // too far behind
  body->abort();
  ASSERT_TRUE(runUntil([&] { return got.has_value() && up_.closed_by_peer == 1; }));
  EXPECT_EQ(got->status, 0);
  EXPECT_TRUE(up_.requests.empty());  // never a whole request
}

TEST_F(CallsTest, StreamedResponseArrivesInPieces) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  up_.answer =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Fake: 2\r\n\r\n"
      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
  int head_status = 0;
  std::string pieces;
  int ends = 0;
  api::CallRequest req;
  req.upstream = "u";
  req.on_head = [&](int status, const http::HeaderList& headers) {
    head_status = status;
    EXPECT_EQ(*headers.find("x-fake"), "2");
    return true;
  };
  req.on_data = [&](std::string_view piece, bool end) {
    EXPECT_EQ(ends, 0);  // nothing after the end
    pieces.append(piece);
    ends += end;
    return true;
  };
  std::optional<api::CallResponse> got;
  calls_.start(std::move(req), keep(got));
  ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
  EXPECT_EQ(head_status, 200);
  EXPECT_EQ(pieces, "abcdef");
  EXPECT_EQ(ends, 1);
  EXPECT_EQ(got->status, 200);
  EXPECT_TRUE(got->body.empty());

  // Returning false stops the call: it fails, its connection is not pooled.
  api::CallRequest stop;
  stop.upstream = "u";
  stop.on_head = [](int, const http::HeaderList&) { return false; };
  std::optional<api::CallResponse> stopped;
  calls_.start(std::move(stop), keep(stopped));
  ASSERT_TRUE(runUntil([&] { return stopped.has_value(); }));
  EXPECT_EQ(stopped->status, 0);
}

TEST_F(CallsTest, DeadlineGives504) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  up_.hang = true;
  api::CallRequest req;
  req.upstream = "u";
  req.timeout = std::chrono::milliseconds(100);
  std::optional<api::CallResponse> got;
  calls_.start(std::move(req), keep(got));
  ASSERT_TRUE(runUntil([&] { return up_.requests.size() == 1; }));
  time_.advance(std::chrono::milliseconds(99));
  runUntil([] { return false; }, std::chrono::milliseconds(30));
  EXPECT_FALSE(got.has_value());
  time_.advance(std::chrono::milliseconds(2));
  ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
  EXPECT_EQ(got->error_status, 504);
  EXPECT_EQ(got->error, "upstream request timeout");
}

TEST_F(CallsTest, FailingTargetIsEjectedUntilItsTimeIsUp) {
  up_.answer = "HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n";
  load("  - { name: u, targets: [ \"" + up_.address() + "\", \"" + other_.address() +
       "\" ], retries: { attempts: 1 },\n      outlier_detection: { consecutive_failures: 2, "
       "base_ejection: 30s } }\n");
  for (int i = 0; i < 4; ++i) callOnce();  // round robin: two failures on the bad target
  EXPECT_EQ(stats_.upstream("u").ejections.get(), 1u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(callOnce(), 200);  // only the good target now
  EXPECT_EQ(up_.requests.size(), 2u);
  time_.advance(std::chrono::seconds(29));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(callOnce(), 200);
  EXPECT_EQ(up_.requests.size(), 2u);
  time_.advance(std::chrono::seconds(2));  // the ejection is over: back in the rotation
  int failed = 0;
  for (int i = 0; i < 2; ++i) failed += callOnce() == 500;
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(up_.requests.size(), 3u);
}

TEST_F(CallsTest, CircuitOpensThenHalfOpensAfterItsTime) {
  up_.answer = "HTTP/1.1 502 X\r\nContent-Length: 0\r\n\r\n";
  load("  - { name: u, targets: [ \"" + up_.address() +
       "\" ], retries: { attempts: 1 },\n      circuit_breaker: { failure_threshold: 2, "
       "open_duration: 10s } }\n");
  EXPECT_EQ(callOnce(), 502);
  EXPECT_EQ(callOnce(), 502);
  EXPECT_EQ(callOnce(), 503);  // open: the upstream is not touched
  EXPECT_EQ(up_.requests.size(), 2u);
  time_.advance(std::chrono::seconds(10));
  EXPECT_EQ(callOnce(), 502);  // half-open: one probe, which fails: open again
  EXPECT_EQ(callOnce(), 503);
  up_.answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  time_.advance(std::chrono::seconds(10));
  EXPECT_EQ(callOnce(), 200);  // the probe succeeds: closed
  EXPECT_EQ(callOnce(), 200);
  EXPECT_EQ(up_.requests.size(), 5u);
}

TEST_F(CallsTest, AtMostMaxCallsPerRequestRunAtOnce) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n",
       ", limits: { max_calls_per_request: 2 }");
  up_.hang = true;
  std::optional<api::CallResponse> third;
  for (int i = 0; i < 2; ++i) {
    api::CallRequest req;
    req.upstream = "u";
    calls_.start(std::move(req), [](api::CallResponse) {});
  }
  api::CallRequest req;
  req.upstream = "u";
  calls_.start(std::move(req), keep(third));
  ASSERT_TRUE(runUntil([&] { return third.has_value(); }));
  EXPECT_EQ(third->error_status, 503);
  EXPECT_EQ(calls_.running(), 2u);
}

TEST_F(CallsTest, ResponseOverTheLimitFails) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  api::CallRequest req;
  req.upstream = "u";
  req.max_response_bytes = 3;
  std::optional<api::CallResponse> got;
  calls_.start(std::move(req), keep(got));
  ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
  EXPECT_EQ(got->status, 0);
  EXPECT_EQ(got->error_status, 502);
  EXPECT_EQ(got->error, "call response too large");
}

TEST_F(CallsTest, UnknownUpstreamAndUrlCalls) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  std::optional<api::CallResponse> unknown, by_url;
  api::CallRequest a;
  a.upstream = "nope";
  calls_.start(std::move(a), keep(unknown));
  api::CallRequest b;
  b.url = "http://" + other_.address() + "/v1/x?y=1";
  calls_.start(std::move(b), keep(by_url));
  ASSERT_TRUE(runUntil([&] { return unknown && by_url; }));
  EXPECT_EQ(unknown->error_status, 503);
  EXPECT_EQ(by_url->status, 200);
  ASSERT_EQ(other_.requests.size(), 1u);
  EXPECT_EQ(other_.requests[0].rfind("GET /v1/x?y=1 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(other_.requests[0].find("Host: " + other_.address() + "\r\n"), std::string::npos);
  // The origin's connection is pooled on the worker: a second call reuses it.
  std::optional<api::CallResponse> again;
  api::CallRequest c;
  c.url = "http://" + other_.address() + "/again";
  calls_.start(std::move(c), keep(again));
  ASSERT_TRUE(runUntil([&] { return again.has_value(); }));
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(other_.closed_by_peer, 0);
  EXPECT_EQ(other_.requests.size(), 2u);
}

// A URL is a template, so a client may make a worker call ever more origins. The worker keeps
// at most kMaxOrigins of them, each with its own /metrics series while there are no more than
// that; later origins count in one shared series.
TEST_F(CallsTest, UrlOriginsAreBoundedPerWorker) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n");
  const auto resolve = [&](const std::string& url) {
    std::optional<Result<std::shared_ptr<const OriginUpstream>>> got;
    asio::co_spawn(
        io_, [&]() -> Task<void> { got = co_await originUpstream(w_, url, ""); }, asio::detached);
    EXPECT_TRUE(runUntil([&] { return got.has_value(); }));
    return got && *got ? got->value() : nullptr;
  };
  constexpr std::size_t kMax = OriginUpstreams::kMaxOrigins;
  // Numeric addresses resolve without DNS; nothing connects to them.
  std::shared_ptr<const OriginUpstream> first;  // as a call running meanwhile holds it
  for (std::size_t i = 0; i < kMax; ++i) {
    auto origin = resolve("http://127.0.0.2:" + std::to_string(1000 + i) + "/");
    ASSERT_NE(origin, nullptr);
    EXPECT_EQ(origin->upstream.stats, nullptr) << i;  // a series named after the origin
    // Its own balancer: nothing in the worker's table outlives (or is dropped before) it.
    EXPECT_EQ(&w_.balancer(origin->upstream), origin->upstream.balancer.get()) << i;
    if (i == 0) first = origin;
  }
  EXPECT_EQ(w_.origins->by_key.size(), kMax);
  auto first_again = resolve("http://127.0.0.2:1000/x");  // known: no new entry
  ASSERT_NE(first_again, nullptr);
  EXPECT_EQ(w_.origins->by_key.size(), kMax);

  // One more: the table stays full (one went), and its calls count in the shared series.
  const std::string later = "http://" + other_.address() + "/late";
  auto origin = resolve(later);
  ASSERT_NE(origin, nullptr);
  EXPECT_EQ(w_.origins->by_key.size(), kMax);
  auto& others = stats_.upstream(OriginUpstreams::kOtherOrigins);
  EXPECT_EQ(origin->upstream.stats, &others);
  std::optional<api::CallResponse> answer;
  api::CallRequest call;
  call.url = later;
  calls_.start(std::move(call), keep(answer));
  ASSERT_TRUE(runUntil([&] { return answer.has_value(); }));
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(others.by_class[2].get(), 1u);
  std::size_t series = 0;
  stats_.forEachUpstream([&](const std::string&, const auto&) { ++series; });
  EXPECT_LE(series, kMax + 2);  // the origins' own, the shared one, the configured "u"

  // A minute on, every entry is due for resolving again: the next new origin clears them.
  time_.advance(std::chrono::seconds(61));
  ASSERT_NE(resolve("http://127.0.0.3:80/"), nullptr);
  EXPECT_EQ(w_.origins->by_key.size(), 1u);
  // The first origin left the table; what its call holds still balances.
  EXPECT_EQ(w_.balancer(first->upstream).pick(0, {}), 0);
}

// An exchange holds its upstream's balancer from its first pick to its last attempt's end.
// Reloads (or DNS) that change the upstream's targets twice meanwhile replace that balancer in
// the worker's table: it must stay alive while held, and go once let go.
TEST_F(CallsTest, ABalancerHeldByAnExchangeOutlivesItsReplacement) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ], balance: least_request }\n");
  const snapshot::Upstream& configured = *snapshot_->findUpstream("u");
  auto version = [&](const std::string& fingerprint) {
    snapshot::Upstream up = configured;
    up.fingerprint = fingerprint;
    return up;
  };
  const auto a = version("a"), b = version("b"), c = version("c"), d = version("d");
  {
    upstream::BalancerUse held(w_.balancer(a));
    ASSERT_EQ(held->pick(0, {}), 0);
    held->onStart(0);
    w_.balancer(b);  // "a" becomes the other one
    w_.balancer(c);  // and then goes out of the table, still held
    EXPECT_EQ(w_.retiredBalancers(), 1u);
    held->onFinish(0);  // on the object it started on (ASan: not a freed one)
    EXPECT_EQ(held->pick(0, {}), 0);
  }
  w_.balancer(d);  // the next replacement frees what nobody holds
  EXPECT_EQ(w_.retiredBalancers(), 0u);
}

TEST_F(CallsTest, CallsAnInternalRouteInProcessWithItsPlugins) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n", "",
       "  - name: inner\n"
       "    internal: true\n"
       "    match: { path: \"/items/{id}\", methods: [GET, POST] }\n"
       "    rewrite: \"/v2/items/{id}\"\n"
       "    upstream: u\n"
       "    plugins: [ { name: headers, config: { request: { set: { X-Inner: yes } } } } ]\n");
  // Listeners never see it: the path falls to the catch-all route.
  router::RequestView view{"", "GET", "/items/7", "", nullptr};
  const auto listener_match = snapshot_->matcher->match(view);
  ASSERT_EQ(listener_match.kind, router::MatchResult::Kind::Matched);
  EXPECT_EQ(snapshot_->routes[listener_match.route->index].cfg->name, "r");

  api::CallRequest req;
  req.route = "inner";
  req.method = "POST";
  req.target = "/items/7?full=1";
  req.body = "payload";
  std::optional<api::CallResponse> got;
  calls_.start(std::move(req), keep(got));
  ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "hello");
  ASSERT_EQ(up_.requests.size(), 1u);
  const std::string& sent = up_.requests[0];
  EXPECT_EQ(sent.rfind("POST /v2/items/7?full=1 HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_NE(sent.find("X-Inner: yes\r\n"), std::string::npos) << sent;
  EXPECT_EQ(sent.substr(sent.size() - 7), "payload");
  EXPECT_EQ(calls_.running(), 0u);

  // The route's own methods and path apply: its answers, not a failed call.
  for (auto [method, target, status] :
       {std::tuple{"DELETE", "/items/7", 405}, std::tuple{"GET", "/other", 404}}) {
    api::CallRequest r;
    r.route = "inner";
    r.method = method;
    r.target = target;
    got.reset();
    calls_.start(std::move(r), keep(got));
    ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
    EXPECT_EQ(got->status, status) << method << " " << target;
  }
  EXPECT_EQ(up_.requests.size(), 1u);

  // Only internal routes are callable by name.
  api::CallRequest pub;
  pub.route = "r";
  got.reset();
  calls_.start(std::move(pub), keep(got));
  ASSERT_TRUE(runUntil([&] { return got.has_value(); }));
  EXPECT_EQ(got->status, 0);
  EXPECT_EQ(got->error_status, 500);
}

// A filter's bug ends its request with a JSON 500 instead of a request that never answers
// (the callback; a synchronous throw in an internal route, whose coroutine is detached) or an
// exception through the worker's loop (the start).
TEST_F(CallsTest, AFilterThatThrowsEndsItsRequestWithA500) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n", "",
       "  - { name: at-start, internal: true, match: { path: /s }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: start } ] }\n"
       "  - { name: in-callback, internal: true, match: { path: /c }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: callback } ] }\n"
       "  - { name: in-headers, internal: true, match: { path: /h }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: sync } ] }\n");
  for (const auto& [route, target, message] :
       {std::tuple{"at-start", "/s", "a filter failed"},
        std::tuple{"in-callback", "/c", "a filter failed"},
        std::tuple{"in-headers", "/h", "the internal route failed"}}) {
    api::CallRequest req;
    req.route = route;
    req.target = target;
    std::optional<api::CallResponse> got;
    calls_.start(std::move(req), keep(got));
    ASSERT_TRUE(runUntil([&] { return got.has_value(); })) << route;
    const int status = got->status ? got->status : got->error_status;
    EXPECT_EQ(status, 500) << route;
    const std::string said = got->status ? got->body : got->error;
    EXPECT_NE(said.find(message), std::string::npos) << route << ": " << said;
  }
  EXPECT_EQ(up_.requests.size(), 1u);  // the callback's call; never the route's upstream
}

// The same bug on a client's HTTP/1.1 connection: the request is answered with a JSON 500 (no
// filter runs on it), then the connection closes; before, it closed with no answer at all. In
// the response phase, the upstream's answer the filter was to shape does not leave (before,
// it left as if the filter had not been there).
TEST_F(CallsTest, AFilterThatThrowsOnAClientConnectionGetsA500) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n", "",
       "  - { name: boom, match: { path: /boom }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: sync } ] }\n"
       "  - { name: late-start, match: { path: /late-start }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: response-start } ] }\n"
       "  - { name: late-callback, match: { path: /late-callback }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: response-callback } ] }\n");
  std::size_t upstream_requests = 0;
  for (const auto& [path, reaches_upstream] :
       {std::pair{"/boom", 0}, std::pair{"/late-start", 1}, std::pair{"/late-callback", 2}}) {
    TcpPair pair;
    startHttpSession(w_, pair.adoptReader(io_), tcp::endpoint(), nullptr);
    pair.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: a\r\n\r\n");
    std::string answer;
    bool closed = false;
    ASSERT_TRUE(runUntil([&] {
      char buf[4096];
      const ssize_t n = ::recv(pair.writer, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) answer.append(buf, static_cast<std::size_t>(n));
      closed |= n == 0;
      return closed;
    })) << path
        << ": " << answer;
    EXPECT_EQ(answer.rfind("HTTP/1.1 500 ", 0), 0u) << path << ": " << answer;
    EXPECT_NE(answer.find(R"({"error":"internal error","status":500,"request_id":")"),
              std::string::npos)
        << path << ": " << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << path << ": " << answer;
    EXPECT_EQ(answer.find("hello"), std::string::npos) << path << ": " << answer;
    // The route's own request, and the callback's call where there is one.
    upstream_requests += static_cast<std::size_t>(reaches_upstream);
    EXPECT_EQ(up_.requests.size(), upstream_requests) << path;
  }
}

// The same bug on an HTTP/2 stream: a JSON 500 on that stream (before, it was reset), and the
// connection goes on serving its other streams.
TEST_F(CallsTest, AFilterThatThrowsOnAnHttp2StreamGetsA500) {
  load("  - { name: u, targets: [ \"" + up_.address() + "\" ] }\n", "",
       "  - { name: boom, match: { path: /boom }, upstream: u,\n"
       "      plugins: [ { name: test-throws, config: sync } ] }\n");
  struct Responses : http2::ClientCodec::Handler {
    void onResponseHead(std::int32_t id, int status, http::HeaderList) override {
      this->status[id] = status;
    }
    void onResponseData(std::int32_t id, std::string_view data) override { body[id] += data; }
    void onResponseTrailers(std::int32_t, http::HeaderList) override {}
    void onResponseEnd(std::int32_t id) override { ended.insert(id); }
    void onStreamClosed(std::int32_t id, std::uint32_t error_code) override {
      if (error_code != 0) reset.insert(id);
    }
    std::map<std::int32_t, int> status;
    std::map<std::int32_t, std::string> body;
    std::set<std::int32_t> ended, reset;
  } responses;
  http2::ClientCodec codec(responses, {});
  TcpPair pair;
  ASSERT_TRUE(snapshot_->listeners.at(0).cfg->http2.enabled);  // h2c with prior knowledge
  startHttpSession(w_, pair.adoptReader(io_), tcp::endpoint(), &snapshot_->listeners.at(0));
  auto request = [&](std::string_view path) {
    http::HeaderList fields;
    fields.add(":method", "GET");
    fields.add(":scheme", "http");
    fields.add(":authority", "a");
    fields.add(":path", std::string(path));
    const std::int32_t id = codec.submitRequest(fields, true);
    const std::string_view out = codec.output();
    pair.send(std::string(out));
    codec.consumeOutput(out.size());
    return id;
  };
  auto until = [&](std::int32_t id) {
    return runUntil([&] {
      char buf[4096];
      const ssize_t n = ::recv(pair.writer, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        EXPECT_TRUE(codec.receive(std::string_view(buf, static_cast<std::size_t>(n))));
      }
      const std::string_view out = codec.output();  // SETTINGS and WINDOW_UPDATE acks
      if (!out.empty()) {
        pair.send(std::string(out));
        codec.consumeOutput(out.size());
      }
      return responses.ended.contains(id) || responses.reset.contains(id);
    });
  };
  const std::int32_t boom = request("/boom");
  ASSERT_TRUE(until(boom));
  EXPECT_FALSE(responses.reset.contains(boom));
  EXPECT_EQ(responses.status[boom], 500);
  EXPECT_NE(responses.body[boom].find(R"({"error":"internal error","status":500,"request_id":")"),
            std::string::npos)
      << responses.body[boom];
  EXPECT_TRUE(up_.requests.empty());
  const std::int32_t next = request("/fine");
  ASSERT_TRUE(until(next));
  EXPECT_EQ(responses.status[next], 200);
  EXPECT_EQ(responses.body[next], "hello");
}

}  // namespace
}  // namespace portico::proxy
