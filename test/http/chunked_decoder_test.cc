#include "http/codec/chunked_decoder.h"

#include <gtest/gtest.h>

#include <string>

namespace portico::http {
namespace {

struct Decoded {
  ChunkedDecoder::Status status;
  std::size_t consumed;
  std::string data;
};

Decoded decodeAll(std::string_view in) {
  ChunkedDecoder d;
  std::string data;
  auto step = d.feed(in, [&](std::string_view s) { data.append(s); });
  return {step.status, step.consumed, data};
}

Decoded decodeByteByByte(std::string_view in) {
  ChunkedDecoder d;
  std::string data;
  std::size_t consumed = 0;
  ChunkedDecoder::Step step;
  for (std::size_t i = 0; i < in.size(); ++i) {
    step = d.feed(in.substr(i, 1), [&](std::string_view s) { data.append(s); });
    consumed += step.consumed;
    if (step.status != ChunkedDecoder::Status::NeedMore) break;
  }
  return {step.status, consumed, data};
}

TEST(ChunkedDecoder, DecodesAndStopsAtTheEnd) {
  std::string body = "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n";
  for (auto f : {decodeAll, decodeByteByByte}) {
    auto r = f(body + "NEXT");
    EXPECT_EQ(r.status, ChunkedDecoder::Status::Done);
    EXPECT_EQ(r.consumed, body.size());
    EXPECT_EQ(r.data, "hello 0123456789");
  }
}

TEST(ChunkedDecoder, Trailers) {
  auto r = decodeAll("3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-B: 2\r\n\r\n");
  EXPECT_EQ(r.status, ChunkedDecoder::Status::Done);
  EXPECT_EQ(r.data, "abc");
  EXPECT_EQ(decodeAll("0\r\n folded: 1\r\n\r\n").status, ChunkedDecoder::Status::Error);
  EXPECT_EQ(decodeAll("0\r\nnocolon\r\n\r\n").status, ChunkedDecoder::Status::Error);
}

TEST(ChunkedDecoder, KeepsTrailerFieldsWhenAsked) {
  ChunkedDecoder d;
  d.keepTrailers(true);
  std::string data;
  auto step = d.feed("2\r\nok\r\n0\r\ngrpc-status: 0\r\ngrpc-message:  fine \r\n\r\n",
                     [&](std::string_view s) { data.append(s); });
  EXPECT_EQ(step.status, ChunkedDecoder::Status::Done);
  EXPECT_EQ(data, "ok");
  ASSERT_EQ(d.trailers().size(), 2u);
  EXPECT_EQ(*d.trailers().find("grpc-status"), "0");
  EXPECT_EQ(*d.trailers().find("grpc-message"), "fine");
  EXPECT_EQ(decodeAll("0\r\nbad name: x\r\n\r\n").status, ChunkedDecoder::Status::Error);
  EXPECT_EQ(decodeAll("0\r\n: novalue\r\n\r\n").status, ChunkedDecoder::Status::Error);
}

// Relayed to an HTTP/2 client, a Connection trailer made it reset the stream (the response
// was lost); framing and routing fields mean nothing in a trailer section either.
TEST(ChunkedDecoder, KeptTrailersLeaveOutFramingRoutingAndConnectionFields) {
  ChunkedDecoder d;
  d.keepTrailers(true);
  auto step = d.feed(
      "0\r\nConnection: close\r\nX-Sum: 1\r\nContent-Length: 5\r\nTransfer-Encoding: "
      "chunked\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nTE: trailers\r\n"
      "Host: evil\r\nExpect: 100-continue\r\ngrpc-status: 0\r\n\r\n",
      [](std::string_view) {});
  EXPECT_EQ(step.status, ChunkedDecoder::Status::Done);
  ASSERT_EQ(d.trailers().size(), 2u);
  EXPECT_EQ(*d.trailers().find("x-sum"), "1");
  EXPECT_EQ(*d.trailers().find("grpc-status"), "0");
}

TEST(ChunkedDecoder, RefusesBadFraming) {
  for (std::string bad : {"zz\r\n", "\r\n", "3\nabc\r\n", "3\r\nabcd\r\n", "3\r\nabc\n",
                          "fffffffffffffffff\r\n", "3;\x01\r\nabc\r\n", "-1\r\n"}) {
    EXPECT_EQ(decodeAll(bad).status, ChunkedDecoder::Status::Error) << bad;
    EXPECT_EQ(decodeByteByByte(bad).status, ChunkedDecoder::Status::Error) << bad;
  }
}

TEST(ChunkedDecoder, LongExtensionsAreBounded) {
  ChunkedDecoder d(16, 64);
  auto step = d.feed("1;" + std::string(100, 'a') + "\r\nx\r\n0\r\n\r\n", [](std::string_view) {});
  EXPECT_EQ(step.status, ChunkedDecoder::Status::Error);
}

}  // namespace
}  // namespace portico::http
