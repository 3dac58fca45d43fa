// Response body transforms: the chain, and the stream that applies them before the client's
// writer (HTTP/1 or HTTP/2 alike: both are a ResponseStream).
#include "proxy/body_transforms.h"

#include <gtest/gtest.h>

#include <cctype>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace portico::proxy {
namespace {

// What reaches the client's writer.
class RecordingStream final : public ResponseStream {
 public:
  Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) override {
    head = resp;
    head_ended = end_stream;
    ++heads;
    co_return true;
  }
  Task<bool> sendData(std::string_view data, bool end_stream) override {
    body.append(data);
    ++pieces;
    ended |= end_stream;
    co_return true;
  }
  Task<bool> sendTrailers(const http::HeaderList& t) override {
    trailers = t;
    ended = true;
    co_return true;
  }
  http::ResponseHead head;
  bool head_ended = false;
  int heads = 0, pieces = 0;
  std::string body;
  bool ended = false;
  http::HeaderList trailers;
};

class Upper final : public api::BodyTransform {
 public:
  std::string_view name() const override { return "upper"; }
  bool transform(std::string_view in, bool, std::string& out, std::string&) override {
    for (char c : in) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return true;
  }
};

class Suffix final : public api::BodyTransform {
 public:
  explicit Suffix(std::string s) : s_(std::move(s)) {}
  std::string_view name() const override { return "suffix"; }
  bool transform(std::string_view in, bool end, std::string& out, std::string&) override {
    out.append(in);
    if (end) out.append(s_);
    return true;
  }

 private:
  std::string s_;
};

class Reverse final : public api::BufferedBodyTransform {
 public:
  explicit Reverse(std::size_t max) : BufferedBodyTransform(max) {}
  std::string_view name() const override { return "reverse"; }

 protected:
  bool transformWhole(std::string& body, std::string&) override {
    body.assign(body.rbegin(), body.rend());
    return true;
  }
};

class FailAfter final : public api::BodyTransform {
 public:
  explicit FailAfter(int n, bool throws = false) : n_(n), throws_(throws) {}
  std::string_view name() const override { return "fail"; }
  bool transform(std::string_view in, bool, std::string& out, std::string& error) override {
    if (n_-- == 0) {
      if (throws_) throw std::runtime_error("boom");
      error = "bad input";
      return false;
    }
    out.append(in);
    return true;
  }

 private:
  int n_;
  bool throws_;
};

// Sees the body, passes it on (a cache keeping a copy).
class Observer final : public api::BodyTransform {
 public:
  explicit Observer(std::string& seen) : seen_(seen) {}
  std::string_view name() const override { return "observer"; }
  bool observesOnly() const override { return true; }
  bool transform(std::string_view in, bool end, std::string&, std::string&) override {
    seen_.append(in);
    if (end) seen_.append("|end");
    return true;
  }

 private:
  std::string& seen_;
};

// A transform stream in front of a recording client, with `chain` installed.
struct Rig {
  explicit Rig(std::unique_ptr<api::BodyTransform> t) { chain.push_back(std::move(t)); }
  TransformChain chain;
  RecordingStream client;
  std::string error;
  TransformStream ts{client, chain, error, "id"};
};

http::ResponseHead head200() {
  http::ResponseHead h;
  h.status = 200;
  h.framing = http::BodyFraming::ContentLength;
  h.content_length = 9;
  h.headers.add("ETag", "\"abc\"");
  h.headers.add("Content-Length", "9");
  return h;
}

// Runs `steps` (sendHead/sendData calls) on a loop; returns each call's result.
template <class F>
void run(F steps) {
  asio::io_context io;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> Task<void> {
        co_await steps();
        done = true;
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(done);
}

TEST(BodyTransforms, ChainRunsInOrderInstalled) {
  TransformChain chain;
  chain.push_back(std::make_unique<Suffix>("-a"));
  chain.push_back(std::make_unique<Upper>());
  std::string out, error;
  ASSERT_TRUE(runTransforms(chain, "x", false, out, error, "id"));
  ASSERT_TRUE(runTransforms(chain, "y", true, out, error, "id"));
  EXPECT_EQ(out, "XY-A");
}

TEST(BodyTransforms, AnObserverSeesWhatTheTransformsBeforeItMade) {
  std::string seen_first, seen_last;
  TransformChain chain;
  chain.push_back(std::make_unique<Observer>(seen_first));
  chain.push_back(std::make_unique<Suffix>("-a"));
  chain.push_back(std::make_unique<Upper>());
  chain.push_back(std::make_unique<Observer>(seen_last));
  std::string out, error;
  ASSERT_TRUE(runTransforms(chain, "x", false, out, error, "id"));
  ASSERT_TRUE(runTransforms(chain, "y", true, out, error, "id"));
  EXPECT_EQ(out, "XY-A");
  EXPECT_EQ(seen_first, "xy|end");
  EXPECT_EQ(seen_last, "XY-A|end");
}

TEST(BodyTransforms, ObserversOnlyLeaveHeadAndBodyAsTheyCame) {
  std::string seen;
  Rig rig(std::make_unique<Observer>(seen));
  auto& [chain, client, error, ts] = rig;
  run([&]() -> Task<void> {
    EXPECT_TRUE(co_await ts.sendHead(head200(), false));
    EXPECT_EQ(client.heads, 1);  // at once: nothing to wait for
    EXPECT_TRUE(co_await ts.sendData("abcd", false));
    EXPECT_TRUE(co_await ts.sendData("efghi", true));
  });
  EXPECT_EQ(client.head.framing, http::BodyFraming::ContentLength);
  EXPECT_EQ(client.head.content_length, 9u);
  EXPECT_EQ(*client.head.headers.find("etag"), "\"abc\"");  // still strong
  EXPECT_EQ(client.body, "abcdefghi");
  EXPECT_EQ(client.pieces, 2);
  EXPECT_EQ(seen, "abcdefghi|end");
}

TEST(BodyTransforms, FailuresAndExceptionsBecomeErrors) {
  TransformChain chain;
  chain.push_back(std::make_unique<FailAfter>(0));
  std::string out, error;
  EXPECT_FALSE(runTransforms(chain, "x", true, out, error, "id"));
  EXPECT_EQ(error, "response body transform failed: bad input");
  TransformChain throwing;
  throwing.push_back(std::make_unique<FailAfter>(0, true));
  EXPECT_FALSE(runTransforms(throwing, "x", true, out, error, "id"));
  EXPECT_EQ(error, "response body transform failed: boom");
  TransformChain small;
  small.push_back(std::make_unique<Reverse>(4));
  EXPECT_FALSE(runTransforms(small, "12345", false, out, error, "id"));
  EXPECT_EQ(error, "response body too large for transformation");
}

TEST(BodyTransforms, StreamingBodyGoesChunkedWithAWeakEtag) {
  Rig rig(std::make_unique<Upper>());
  auto& [chain, client, error, ts] = rig;
  run([&]() -> Task<void> {
    const auto head = head200();
    EXPECT_TRUE(co_await ts.sendHead(head, false));
    EXPECT_EQ(client.heads, 0);  // waits for the first transformed bytes
    EXPECT_TRUE(co_await ts.sendData("abc", false));
    EXPECT_TRUE(co_await ts.sendData("def", false));
    EXPECT_TRUE(co_await ts.sendData("ghi", true));
  });
  EXPECT_EQ(client.heads, 1);
  EXPECT_EQ(client.head.framing, http::BodyFraming::Chunked);
  EXPECT_EQ(client.head.content_length, 0u);
  EXPECT_EQ(*client.head.headers.find("etag"), "W/\"abc\"");
  EXPECT_EQ(client.body, "ABCDEFGHI");
  EXPECT_TRUE(client.ended);
}

TEST(BodyTransforms, BufferedBodyLeavesWithItsExactLength) {
  TransformChain chain;
  chain.push_back(std::make_unique<Reverse>(100));
  chain.push_back(std::make_unique<Suffix>("!"));
  RecordingStream client;
  std::string error;
  TransformStream ts(client, chain, error, "id");
  run([&]() -> Task<void> {
    EXPECT_TRUE(co_await ts.sendHead(head200(), false));
    EXPECT_TRUE(co_await ts.sendData("abc", false));
    EXPECT_EQ(client.heads, 0);
    EXPECT_TRUE(co_await ts.sendData("def", true));
  });
  EXPECT_EQ(client.head.framing, http::BodyFraming::ContentLength);
  EXPECT_EQ(client.head.content_length, 7u);
  EXPECT_EQ(client.body, "fedcba!");
  EXPECT_EQ(client.pieces, 1);
}

TEST(BodyTransforms, OverTheBufferLimitFailsBeforeTheHead) {
  Rig rig(std::make_unique<Reverse>(4));
  auto& [chain, client, error, ts] = rig;
  run([&]() -> Task<void> {
    EXPECT_TRUE(co_await ts.sendHead(head200(), false));
    EXPECT_TRUE(co_await ts.sendData("abc", false));
    EXPECT_FALSE(co_await ts.sendData("def", false));
    EXPECT_FALSE(co_await ts.sendData("ghi", true));  // stays failed
  });
  EXPECT_TRUE(ts.failedBeforeHead());
  EXPECT_EQ(client.heads, 0);
  EXPECT_EQ(error, "response body too large for transformation");
}

TEST(BodyTransforms, FailureAfterTheHeadIsNotHidden) {
  Rig rig(std::make_unique<FailAfter>(1));
  auto& [chain, client, error, ts] = rig;
  run([&]() -> Task<void> {
    EXPECT_TRUE(co_await ts.sendHead(head200(), false));
    EXPECT_TRUE(co_await ts.sendData("abc", false));
    EXPECT_FALSE(co_await ts.sendData("def", true));
  });
  EXPECT_TRUE(ts.failed());
  EXPECT_FALSE(ts.failedBeforeHead());
  EXPECT_EQ(client.heads, 1);
  EXPECT_FALSE(client.ended);  // the writer closes / resets: never a clean end
}

TEST(BodyTransforms, BodilessResponsesPassUntouchedAndTrailersFollowTheBody) {
  Rig rig(std::make_unique<Suffix>("+"));
  auto& [chain, client, error, ts] = rig;
  run([&]() -> Task<void> {
    http::ResponseHead h = head200();
    h.framing = http::BodyFraming::None;
    EXPECT_TRUE(co_await ts.sendHead(h, true));
  });
  EXPECT_TRUE(client.head_ended);
  EXPECT_EQ(*client.head.headers.find("etag"), "\"abc\"");
  EXPECT_EQ(client.body, "");

  RecordingStream grpc;
  TransformStream with_trailers(grpc, chain, error, "id");
  run([&]() -> Task<void> {
    EXPECT_TRUE(co_await with_trailers.sendHead(head200(), false));
    EXPECT_TRUE(co_await with_trailers.sendData("m", false));
    http::HeaderList t;
    t.add("grpc-status", "0");
    EXPECT_TRUE(co_await with_trailers.sendTrailers(t));
  });
  EXPECT_EQ(grpc.body, "m+");
  EXPECT_EQ(*grpc.trailers.find("grpc-status"), "0");
}

}  // namespace
}  // namespace portico::proxy
