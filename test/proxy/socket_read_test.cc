#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "core/io_buffer.h"
#include "proxy/draining_receive.h"
#include "proxy/socket_read.h"
#include "tcp_pair.h"

namespace portico::proxy {
namespace {

TEST(DrainingReceive, NothingToReadWouldBlock) {
  TcpPair p;
  char buf[4096];
  const auto r = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_TRUE(r.would_block);
  EXPECT_EQ(r.bytes, 0u);
}

TEST(DrainingReceive, ShortReadReportsTheSocketDrained) {
  TcpPair p;
  p.send("GET / HTTP/1.1\r\n\r\n");
  p.settle();
  char buf[4096];
  const auto r = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, r.bytes), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.drained);
  EXPECT_TRUE(receiveDraining(p.reader, buf, sizeof buf).would_block);
}

TEST(DrainingReceive, MoreThanTheBufferIsNotDrained) {
  TcpPair p;
  std::string data;
  for (int i = 0; i < 5000; ++i) data += static_cast<char>('a' + i % 26);
  p.send(data);
  p.settle();
  char buf[4096];
  const auto first = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(first.bytes, sizeof buf);
  EXPECT_FALSE(first.drained);
  EXPECT_EQ(std::string(buf, first.bytes), data.substr(0, sizeof buf));
  const auto rest = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, rest.bytes), data.substr(sizeof buf));
  EXPECT_TRUE(rest.drained);
}

// The case a plain recv() cannot see: the FIN queued behind the bytes. Not drained: the next
// read must try at once (no epoll edge will come for it) and find EOF.
TEST(DrainingReceive, FinBehindTheBytesIsNotDrained) {
  TcpPair p;
  p.send("last words");
  ::shutdown(p.writer, SHUT_WR);
  p.settle();
  char buf[4096];
  const auto r = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, r.bytes), "last words");
  EXPECT_FALSE(r.drained);
  const auto eof = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(eof.bytes, 0u);
  EXPECT_FALSE(eof.would_block);
  EXPECT_EQ(eof.error, 0);
}

TEST(DrainingReceive, SmallBufferLeavesTheRestAndIsNotDrained) {
  TcpPair p;
  p.send("abc");
  p.settle();
  char buf[2];
  const auto r = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, r.bytes), "ab");
  EXPECT_FALSE(r.drained);
  const auto rest = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, rest.bytes), "c");
  EXPECT_TRUE(rest.drained);
}

// Without the kernel's hint a read cannot know: it never claims the socket drained (the next
// read tries at once, as Asio's own receive does).
TEST(DrainingReceive, WithoutTheHintNothingIsDrained) {
  TcpPair p(false);
  p.send("GET / HTTP/1.1\r\n\r\n");
  p.settle();
  char buf[4096];
  const auto r = receiveDraining(p.reader, buf, sizeof buf);
  EXPECT_EQ(r.bytes, 18u);
  EXPECT_FALSE(r.drained);
}

// The upstream answer's first read: a plain recv(). A short read counts as drained — even
// with a FIN queued behind it, which it cannot see (the readers handle that: readMore).
TEST(DrainingReceive, ShortDrainedTakesAShortReadForDrained) {
  TcpPair p;
  char buf[8];
  EXPECT_TRUE(receiveShortDrained(p.reader, buf, sizeof buf).would_block);
  p.send("0123456789");
  p.settle();
  const auto full = receiveShortDrained(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, full.bytes), "01234567");
  EXPECT_FALSE(full.drained);
  p.send("ab");
  ::shutdown(p.writer, SHUT_WR);
  p.settle();
  const auto rest = receiveShortDrained(p.reader, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, rest.bytes), "89ab");
  EXPECT_TRUE(rest.drained);  // blind to the FIN behind
  const auto eof = receiveShortDrained(p.reader, buf, sizeof buf);
  EXPECT_EQ(eof.bytes, 0u);
  EXPECT_FALSE(eof.would_block);
  EXPECT_FALSE(eof.drained);
}

// Through Asio: after a read that drained the socket the next one waits for epoll's edge
// (no attempt at once), and must still complete when bytes, or the FIN, arrive later.
class ReadPlain : public ::testing::Test {
 protected:
  Socket adopt(TcpPair& p) { return p.adoptReader(io_); }
  // Sends `text` and reads it with readPlain: the socket is left drained.
  void drainedRead(TcpPair& p, Socket& s, const std::string& text) {
    boost::system::error_code ec;
    p.send(text);
    p.settle();
    std::optional<std::string> got;
    startRead(s, got, ec);
    ASSERT_TRUE(runUntil(got));
    EXPECT_EQ(*got, text);
    EXPECT_FALSE(ec);
  }
  // Starts readPlain on `socket`; the result lands in `out` when it completes.
  void startRead(Socket& socket, std::optional<std::string>& out, boost::system::error_code& ec) {
    asio::co_spawn(
        io_.get_executor(),
        [&]() -> Task<void> {
          char buf[1024];
          std::size_t n = co_await readPlain(socket, asio::buffer(buf), ec);
          out = std::string(buf, n);
        },
        asio::detached);
  }
  // Starts readAnswerStart (`first`) or readMore on `socket` with a `size`-byte buffer; what it
  // read lands in `out` when it completes.
  void startAnswerRead(Socket& socket, bool first, bool& unsure, boost::system::error_code& ec,
                       std::optional<std::string>& out, std::size_t size = 1024) {
    asio::co_spawn(
        io_.get_executor(),
        [&, first, size]() -> Task<void> {
          std::string buf(size, '\0');
          std::size_t n = 0;  // (if/else: see upstream_exchange.cc on GCC 12 and co_await)
          if (first)
            n = co_await readAnswerStart(socket, nullptr, asio::buffer(buf), unsure, ec);
          else
            n = co_await readMore(socket, nullptr, asio::buffer(buf), unsure, ec);
          buf.resize(n);
          out = std::move(buf);
        },
        asio::detached);
  }
  // A readParked into a parked buffer, and what it returned once it completes.
  struct ParkedRead {
    BufferPool pool;
    IoBuffer in;
    boost::system::error_code ec;
    std::optional<std::size_t> got;
  };
  // Leaves `p`'s socket drained, then starts `read` on it and lets the loop run a little.
  void startParkedRead(TcpPair& p, Socket& socket, ParkedRead& read) {
    drainedRead(p, socket, "first");
    asio::co_spawn(
        io_.get_executor(),
        [&]() -> Task<void> {
          read.got = co_await readParked(socket, nullptr, read.in, read.pool, read.ec);
        },
        asio::detached);
    runFor(20);
  }
  // Runs the loop until `done` or two seconds pass (a read that never completes fails here).
  template <class T>
  bool runUntil(const std::optional<T>& done) {
    const auto until = Clock::now() + std::chrono::seconds(2);
    while (!done && Clock::now() < until) runFor(10);
    return done.has_value();
  }
  void runFor(int ms) {
    io_.restart();  // a loop that ran out of work stays stopped until restarted
    io_.run_for(std::chrono::milliseconds(ms));
  }
  asio::io_context io_;
};

TEST_F(ReadPlain, ReadAfterADrainedReadCompletesWhenBytesArrive) {
  TcpPair p;
  Socket s = adopt(p);
  drainedRead(p, s, "one");
  boost::system::error_code ec;
  std::optional<std::string> second;
  startRead(s, second, ec);
  runFor(20);  // queued, waiting for the edge
  EXPECT_FALSE(second);
  p.send("two");
  ASSERT_TRUE(runUntil(second));
  EXPECT_EQ(*second, "two");
  EXPECT_FALSE(ec);
}

TEST_F(ReadPlain, FinArrivingWithTheBytesEndsTheNextRead) {
  TcpPair p;
  Socket s = adopt(p);
  boost::system::error_code ec;
  std::optional<std::string> first;
  startRead(s, first, ec);  // waiting before anything arrives: completes from the epoll edge
  runFor(20);
  p.send("bye");
  ::shutdown(p.writer, SHUT_WR);
  ASSERT_TRUE(runUntil(first));
  EXPECT_EQ(*first, "bye");
  std::optional<std::string> second;
  startRead(s, second, ec);
  ASSERT_TRUE(runUntil(second));
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(ReadPlain, FinAfterADrainedReadEndsTheWaitingRead) {
  TcpPair p;
  Socket s = adopt(p);
  drainedRead(p, s, "data");
  boost::system::error_code ec;
  std::optional<std::string> second;
  startRead(s, second, ec);
  runFor(20);
  ::shutdown(p.writer, SHUT_WR);
  ASSERT_TRUE(runUntil(second));
  EXPECT_EQ(ec, asio::error::eof);
}

// The wait TLS uses after its BIO found the socket empty. It may complete at once when an
// epoll edge came since the last drained read (here: the one from registering a socket that
// had bytes), so the caller reads and waits again; then it must wait for bytes, and complete
// when they arrive.
TEST_F(ReadPlain, WaitReadableWaitsForTheNextEdge) {
  TcpPair p;
  Socket s = adopt(p);
  drainedRead(p, s, "first");
  boost::system::error_code ec;
  int wakes = 0;
  std::optional<std::string> got;
  asio::co_spawn(
      io_.get_executor(),
      [&]() -> Task<void> {
        for (;;) {
          co_await waitReadable(s, ec);
          ++wakes;
          char buf[64];
          const auto r = receiveDraining(s.native_handle(), buf, sizeof buf);
          if (ec || !r.would_block) {
            got = std::string(buf, r.bytes);
            co_return;
          }
        }
      },
      asio::detached);
  runFor(20);
  EXPECT_FALSE(got);  // nothing arrived: waiting
  EXPECT_LE(wakes, 1);
  p.send("second");
  ASSERT_TRUE(runUntil(got));
  EXPECT_EQ(*got, "second");
  EXPECT_LE(wakes, 2);
  EXPECT_FALSE(ec);
}

// A keep-alive connection's wait for its next request: the buffer has no storage while the
// socket has nothing, takes the pool's when bytes arrive, and the read after it (the rest of
// a large request) does not wait for another edge.
TEST_F(ReadPlain, AParkedBufferTakesStorageOnlyWhenBytesArrive) {
  TcpPair p;
  Socket s = adopt(p);
  ParkedRead read;
  startParkedRead(p, s, read);
  EXPECT_FALSE(read.got);
  EXPECT_TRUE(read.in.parked());  // waiting without storage
  const std::string big(BufferPool::kClientBufferSize + 100, 'x');
  ASSERT_EQ(::send(p.writer, big.data(), big.size(), 0), ssize_t(big.size()));
  p.settle();
  ASSERT_TRUE(runUntil(read.got));
  EXPECT_FALSE(read.ec);
  EXPECT_FALSE(read.in.parked());
  // The buffer's worth; the rest waits in the socket.
  EXPECT_EQ(*read.got, BufferPool::kClientBufferSize);
  read.in.commit(*read.got);
  read.in.consume(*read.got);
  std::optional<std::string> rest;
  startRead(s, rest, read.ec);
  ASSERT_TRUE(runUntil(rest));  // at once: the socket was not drained
  EXPECT_EQ(rest->size(), 100u);
  read.in.park(read.pool);
  EXPECT_TRUE(read.in.parked());
  EXPECT_EQ(read.pool.spare(), 1u);
}

// The case readMore exists for: the upstream's last bytes and its FIN arrived together,
// so the edge that announced them is spent when the short first read takes the bytes. A read
// that waited for the next edge would wait for ever; readMore looks at once and finds
// the FIN (an answer delimited by the connection's end completes).
TEST_F(ReadPlain, FinHiddenBehindAShortFirstAnswerReadIsFoundByTheNextRead) {
  TcpPair p;
  Socket s = adopt(p);
  bool unsure = false;
  boost::system::error_code ec;
  std::optional<std::string> first;
  startAnswerRead(s, true, unsure, ec, first);
  runFor(20);  // waiting for the answer
  EXPECT_FALSE(first);
  p.send("HTTP/1.0 200 OK\r\n\r\nbody until close");
  ::shutdown(p.writer, SHUT_WR);
  ASSERT_TRUE(runUntil(first));
  EXPECT_EQ(*first, "HTTP/1.0 200 OK\r\n\r\nbody until close");
  EXPECT_TRUE(unsure);

  // Asio took the socket for drained: its own read waits for an edge that will not come.
  std::optional<std::string> stuck;
  startRead(s, stuck, ec);
  runFor(50);
  EXPECT_FALSE(stuck);
  s.cancel();
  ASSERT_TRUE(runUntil(stuck));
  EXPECT_EQ(ec, asio::error::operation_aborted);

  ec.clear();
  std::optional<std::string> more;
  startAnswerRead(s, false, unsure, ec, more);
  ASSERT_TRUE(runUntil(more));
  EXPECT_EQ(*more, "");
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_FALSE(unsure);
}

// An answer in pieces: after the short first read, the next read finds nothing at once and
// waits for the rest, then reads it; a full first read leaves nothing unsure.
TEST_F(ReadPlain, AnswerInPiecesWaitsForTheRest) {
  TcpPair p;
  Socket s = adopt(p);
  bool unsure = false;
  boost::system::error_code ec;
  p.send("HTTP/1.1 200 OK\r\n");
  p.settle();
  std::optional<std::string> head, rest;
  startAnswerRead(s, true, unsure, ec, head, 64);
  ASSERT_TRUE(runUntil(head));
  EXPECT_EQ(*head, "HTTP/1.1 200 OK\r\n");
  EXPECT_TRUE(unsure);
  startAnswerRead(s, false, unsure, ec, rest, 64);
  runFor(20);
  EXPECT_FALSE(rest);  // nothing more yet: waiting for the edge
  EXPECT_FALSE(unsure);
  p.send("Content-Length: 0\r\n\r\n");
  ASSERT_TRUE(runUntil(rest));
  EXPECT_EQ(*rest, "Content-Length: 0\r\n\r\n");
  EXPECT_FALSE(ec);

  p.send(std::string(100, 'x'));
  p.settle();
  std::optional<std::string> full;
  startAnswerRead(s, true, unsure, ec, full, 64);
  ASSERT_TRUE(runUntil(full));
  EXPECT_EQ(full->size(), 64u);
  EXPECT_FALSE(unsure);
}

TEST_F(ReadPlain, AParkedReadEndsOnFin) {
  TcpPair p;
  Socket s = adopt(p);
  ParkedRead read;
  startParkedRead(p, s, read);
  ::shutdown(p.writer, SHUT_WR);
  ASSERT_TRUE(runUntil(read.got));
  EXPECT_EQ(read.ec, asio::error::eof);
  EXPECT_EQ(*read.got, 0u);
}

}  // namespace
}  // namespace portico::proxy
