#include "filters/compression/codec.h"

#include <gtest/gtest.h>

#include <random>

#include "filters/compression/accept_encoding.h"

namespace portico::filters::compression {
namespace {

std::string sample(std::size_t n) {
  std::string s;
  std::mt19937 rng(7);
  while (s.size() < n) s += "{\"id\":" + std::to_string(rng() % 1000) + ",\"name\":\"item\"},";
  s.resize(n);
  return s;
}

// Encodes `text` in pieces of `piece` bytes, decodes the result in pieces of 7 bytes.
std::string roundTrip(Coding c, const std::string& text, std::size_t piece, bool flush = true) {
  auto enc = makeEncoder(c, c == Coding::Brotli ? 4 : 3);
  std::string encoded;
  for (std::size_t i = 0; i < text.size(); i += piece)
    EXPECT_TRUE(enc->encode(std::string_view(text).substr(i, piece), false, encoded, flush));
  EXPECT_TRUE(enc->encode({}, true, encoded));
  auto dec = makeDecoder(c, 1 << 30);
  std::string decoded;
  for (std::size_t i = 0; i < encoded.size(); i += 7)
    EXPECT_EQ(dec->decode(std::string_view(encoded).substr(i, 7), false, decoded),
              Decoder::Status::Ok);
  EXPECT_EQ(dec->decode({}, true, decoded), Decoder::Status::Ok);
  return decoded;
}

TEST(CompressionCodec, RoundTripsInPieces) {
  for (const Coding c : {Coding::Gzip, Coding::Brotli, Coding::Zstd}) {
    for (const std::size_t size : {0ul, 1ul, 5000ul, 300000ul}) {
      const std::string text = sample(size);
      EXPECT_EQ(roundTrip(c, text, 4096), text) << codingName(c) << " " << size;
      EXPECT_EQ(roundTrip(c, text, 100000), text) << codingName(c) << " " << size;
      EXPECT_EQ(roundTrip(c, text, 3000, false), text) << codingName(c) << " unflushed " << size;
    }
  }
}

TEST(CompressionCodec, EachPieceIsFlushed) {
  // What the encoder gave back after a piece decodes to that piece: nothing is held back.
  for (const Coding c : {Coding::Gzip, Coding::Brotli, Coding::Zstd}) {
    auto enc = makeEncoder(c, 3);
    std::string encoded;
    ASSERT_TRUE(enc->encode("data: first event\n\n", false, encoded));
    auto dec = makeDecoder(c, 1 << 20);
    std::string decoded;
    EXPECT_EQ(dec->decode(encoded, false, decoded), Decoder::Status::Ok);
    EXPECT_EQ(decoded, "data: first event\n\n") << codingName(c);
  }
}

TEST(CompressionCodec, ReusedContextsStartCleanAndTakeTheLengthHint) {
  // Encoders of one thread reuse the contexts of finished ones: each body decodes alone.
  for (const Coding c : {Coding::Gzip, Coding::Brotli, Coding::Zstd}) {
    for (int i = 0; i < 3; ++i) {
      const std::string text = sample(1000 + 7000 * static_cast<std::size_t>(i));
      auto enc = makeEncoder(c, 3 + i);
      enc->expectLength(text.size());
      std::string encoded;
      ASSERT_TRUE(enc->encode(std::string_view(text).substr(0, 500), false, encoded));
      ASSERT_TRUE(enc->encode(std::string_view(text).substr(500), true, encoded));
      enc.reset();
      std::string decoded;
      EXPECT_EQ(makeDecoder(c, 1 << 20)->decode(encoded, true, decoded), Decoder::Status::Ok);
      EXPECT_EQ(decoded, text) << codingName(c) << " body " << i;
    }
  }
}

TEST(CompressionCodec, BombsStopAtTheLimit) {
  const std::string zeros(20 << 20, '\0');
  for (const Coding c : {Coding::Gzip, Coding::Brotli, Coding::Zstd}) {
    auto enc = makeEncoder(c, c == Coding::Brotli ? 4 : 3);
    std::string encoded;
    ASSERT_TRUE(enc->encode(zeros, true, encoded));
    EXPECT_LT(encoded.size(), 100000u);
    auto dec = makeDecoder(c, 1 << 20);
    std::string decoded;
    EXPECT_EQ(dec->decode(encoded, true, decoded), Decoder::Status::TooLarge) << codingName(c);
    EXPECT_LE(decoded.size(), (1u << 20) + 64 * 1024);
  }
}

TEST(CompressionCodec, CorruptAndCutStreams) {
  for (const Coding c : {Coding::Gzip, Coding::Brotli, Coding::Zstd}) {
    std::string decoded;
    EXPECT_EQ(makeDecoder(c, 1 << 20)->decode("this is not compressed at all", true, decoded),
              Decoder::Status::Corrupt)
        << codingName(c);
    auto enc = makeEncoder(c, 3);
    std::string encoded;
    ASSERT_TRUE(enc->encode(sample(50000), true, encoded));
    decoded.clear();
    EXPECT_EQ(makeDecoder(c, 1 << 20)
                  ->decode(std::string_view(encoded).substr(0, encoded.size() / 2), true, decoded),
              Decoder::Status::Corrupt)
        << codingName(c) << ": a stream cut short";
  }
}

TEST(AcceptEncoding, QValuesStarAndServerOrder) {
  const std::vector<Coding> offered{Coding::Zstd, Coding::Brotli, Coding::Gzip};
  EXPECT_EQ(chooseCoding("gzip, deflate, br", offered), Coding::Brotli);  // tie: server's order
  EXPECT_EQ(chooseCoding("gzip;q=1.0, br;q=0.5", offered), Coding::Gzip);
  EXPECT_EQ(chooseCoding("gzip;q=0, br;q=0", offered), std::nullopt);
  EXPECT_EQ(chooseCoding("*", offered), Coding::Zstd);
  EXPECT_EQ(chooseCoding("*;q=0.1, zstd;q=0", offered), Coding::Brotli);
  EXPECT_EQ(chooseCoding("identity", offered), std::nullopt);
  EXPECT_EQ(chooseCoding("", offered), std::nullopt);
  EXPECT_EQ(chooseCoding("GZIP ; Q=0.8", offered), Coding::Gzip);
  EXPECT_EQ(chooseCoding("gzip;q=2", offered), std::nullopt);  // malformed q: not accepted
  const std::vector<Coding> gzip_only{Coding::Gzip};
  EXPECT_EQ(chooseCoding("br, zstd", gzip_only), std::nullopt);
}

}  // namespace
}  // namespace portico::filters::compression
