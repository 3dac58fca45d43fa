#pragma once
// Test support for the proxy's socket code: a connected loopback TCP pair.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "proxy/draining_receive.h"
#include "proxy/io_types.h"
#include "support/loopback.h"

namespace portico::proxy {

// A connected loopback TCP pair: `reader` is what the proxy reads, `writer` the peer. The
// reader has the drain hint from its listener, as the proxy's accepted connections do.
struct TcpPair {
  explicit TcpPair(bool drain_hint = true) {
    std::uint16_t port = 0;
    const int listener = testing::listenOnLoopback(port, 1);
    EXPECT_GE(listener, 0);
    if (drain_hint) enableDrainHint(listener);  // the accepted socket inherits it
    writer = testing::connectTo(port);
    EXPECT_GE(writer, 0);
    reader = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    ::close(listener);
  }
  ~TcpPair() {
    if (reader >= 0) ::close(reader);
    if (writer >= 0) ::close(writer);
  }
  void send(const std::string& s) {
    ASSERT_EQ(::write(writer, s.data(), s.size()), ssize_t(s.size()));
  }
  // The reading end (the proxy's side) as an Asio socket on `io`, which owns it from now on.
  Socket adoptReader(asio::io_context& io) {
    Socket s(io.get_executor());
    s.assign(tcp::v4(), reader);
    reader = -1;
    return s;
  }
  // Reads `n` bytes on the peer's side (blocking): what the proxy's side wrote.
  std::string receive(std::size_t n) {
    std::string got(n, '\0');
    std::size_t at = 0;
    while (at < n) {
      const ssize_t r = ::read(writer, got.data() + at, n - at);
      if (r <= 0) break;
      at += static_cast<std::size_t>(r);
    }
    got.resize(at);
    return got;
  }
  // Loopback delivers before write() returns; a short wait covers a busy machine.
  void settle() { ::usleep(2000); }
  int reader = -1;
  int writer = -1;
};

}  // namespace portico::proxy
