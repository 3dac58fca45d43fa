#include "proxy/draining_receive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace portico::proxy {

namespace {

// What a receive that returned `got` (EINTR already retried) gives: bytes, EOF (0 bytes), or
// the reason it stopped.
DrainingReceive outcome(ssize_t got) {
  DrainingReceive r;
  if (got >= 0) {
    r.bytes = static_cast<std::size_t>(got);
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    r.would_block = true;
  } else {
    r.error = errno;
  }
  return r;
}

}  // namespace

void enableDrainHint(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);
}

DrainingReceive receiveDraining(int fd, char* data, std::size_t size) {
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
  DrainingReceive r = outcome(got);
  if (got <= 0) return r;  // EOF, or nothing received
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ) {
      int queued = 0;
      std::memcpy(&queued, CMSG_DATA(c), sizeof queued);
      r.drained = queued == 0;  // the kernel says 1 when only a FIN is left
    }
  }
  return r;
}

DrainingReceive receiveShortDrained(int fd, char* data, std::size_t size) {
  ssize_t got;
  do {
    got = ::recv(fd, data, size, MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  DrainingReceive r = outcome(got);
  r.drained = got > 0 && r.bytes < size;
  return r;
}

}  // namespace portico::proxy
