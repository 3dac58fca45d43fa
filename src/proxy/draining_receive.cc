#include "proxy/draining_receive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace portico::proxy {

void enableDrainHint(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);
}

DrainingReceive receiveDraining(int fd, char* data, std::size_t size) {
  DrainingReceive r;
  iovec iov{data, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got;
  do {
    got = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      r.would_block = true;
    else
      r.error = errno;
    return r;
  }
  r.bytes = static_cast<std::size_t>(got);
  if (got == 0) return r;  // EOF
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ) {
      int queued = 0;
      std::memcpy(&queued, CMSG_DATA(c), sizeof queued);
      r.drained = queued == 0;  // the kernel says 1 when only a FIN is left
    }
  }
  return r;
}

}  // namespace portico::proxy
