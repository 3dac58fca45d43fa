#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <string>
#include <vector>

#include "proxy/worker_context.h"
#include "tcp_pair.h"

namespace portico::proxy {
namespace {

class WriteNow : public ::testing::Test {
 protected:
  Socket adopt(TcpPair& p) { return p.adoptReader(io_); }
  static std::size_t total(const std::vector<asio::const_buffer>& buffers) {
    return asio::buffer_size(buffers);
  }
  asio::io_context io_;
};

// A head, an empty body part and a small body: joined and sent whole, nothing left.
TEST_F(WriteNow, SmallBuffersGoOutWholeAndInOrder) {
  TcpPair p;
  Socket s = adopt(p);
  const std::string head = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
  const std::array<asio::const_buffer, 3> buffers{asio::buffer(head), asio::const_buffer(),
                                                  asio::buffer("hello", 5)};
  std::vector<asio::const_buffer> rest;
  boost::system::error_code ec;
  EXPECT_EQ(writeNow(s, buffers, rest, ec), head.size() + 5);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(p.receive(head.size() + 5), head + "hello");
}

// One non-empty buffer among empty ones, and a sequence too large to join: both whole.
TEST_F(WriteNow, ASingleBufferAndALargeSequenceGoOutWhole) {
  TcpPair p;
  Socket s = adopt(p);
  std::vector<asio::const_buffer> rest;
  boost::system::error_code ec;
  const std::string only = "GET / HTTP/1.1\r\nhost: a\r\n\r\n";
  const std::array<asio::const_buffer, 2> single{asio::buffer(only), asio::const_buffer()};
  EXPECT_EQ(writeNow(s, single, rest, ec), only.size());
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(p.receive(only.size()), only);

  const std::string a(3000, 'a'), b(3000, 'b'), c(3000, 'c');  // 9,000 > kJoinToSendUpTo
  const std::array<asio::const_buffer, 3> large{asio::buffer(a), asio::buffer(b), asio::buffer(c)};
  EXPECT_EQ(writeNow(s, large, rest, ec), a.size() + b.size() + c.size());
  EXPECT_FALSE(ec);
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(p.receive(9000), a + b + c);
}

// A socket that takes part of the bytes: `rest` holds exactly what it did not take, in order,
// whether the sequence was sent as it is or joined first.
TEST_F(WriteNow, WhatTheSocketDoesNotTakeIsLeftInRest) {
  TcpPair p;
  const int small = 4096;
  ::setsockopt(p.writer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ::setsockopt(p.reader, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  Socket s = adopt(p);
  std::string sent;
  std::vector<asio::const_buffer> rest;
  boost::system::error_code ec;
  const std::string big(4 << 20, 'x');
  const std::array<asio::const_buffer, 2> first{asio::buffer(big), asio::buffer("tail", 4)};
  const std::size_t n = writeNow(s, first, rest, ec);
  EXPECT_FALSE(ec);
  ASSERT_LT(n, big.size());
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(n + total(rest), big.size() + 4);
  EXPECT_EQ(static_cast<const char*>(rest[0].data()), big.data() + n);
  sent.append(big, 0, n);

  // The socket is full now: a small joined sequence is not taken at all and stays whole.
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  const std::array<asio::const_buffer, 2> second{asio::buffer(head), asio::buffer("body", 4)};
  std::vector<asio::const_buffer> rest2;
  const std::size_t m = writeNow(s, second, rest2, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(m + total(rest2), head.size() + 4);
  sent.append(head, 0, std::min(m, head.size()));
  EXPECT_EQ(p.receive(sent.size()), sent);
}

}  // namespace
}  // namespace portico::proxy
