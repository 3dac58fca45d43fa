#include "server/listener.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace portico::server {
namespace {

int optionOf(int fd, int option) {
  int value = 0;
  socklen_t len = sizeof value;
  EXPECT_EQ(::getsockopt(fd, IPPROTO_TCP, option, &value, &len), 0);
  return value;
}

// The options every client connection needs are set once on the listener: an accepted
// socket must come with them (the session sets neither per connection).
TEST(Listener, AcceptedConnectionsInheritNoDelayAndTheDrainHint) {
  const auto listener = openListener("127.0.0.1:0");
  ASSERT_TRUE(listener);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(*listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  int accepted = -1;
  for (int i = 0; i < 200 && accepted < 0; ++i) {  // the listener is non-blocking
    accepted = ::accept(*listener, nullptr, nullptr);
    if (accepted < 0) ::usleep(5000);
  }
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(optionOf(accepted, TCP_NODELAY), 1);
  EXPECT_EQ(optionOf(accepted, TCP_INQ), 1);
  ::close(accepted);
  ::close(client);
  ::close(*listener);
}

}  // namespace
}  // namespace portico::server
