#include "server/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/address.h"
#include "proxy/draining_receive.h"

namespace portico::server {

Result<int> openListener(const std::string& address, int backlog) {
  auto hp = parseHostPort(address);
  if (!hp) return hp.error();
  auto addrs = resolve(*hp);
  if (!addrs) return addrs.error();
  const SocketAddress& a = addrs->front();
  int fd = ::socket(a.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError("socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // Accepted connections inherit these: no syscall per connection for them.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  proxy::enableDrainHint(fd);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return makeError("cannot listen on " + address + ": " + err);
  }
  if (::listen(fd, backlog) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return makeError("cannot listen on " + address + ": " + err);
  }
  return fd;
}

}  // namespace portico::server
