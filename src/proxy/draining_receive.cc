#include "proxy/draining_receive.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace portico::proxy {

DrainingReceive receiveDraining(int fd, char* data, std::size_t size) {
  DrainingReceive r;
  // The tail the second message reads into: any size works (it only proves the socket empty,
  // or takes what arrived meanwhile); a quarter keeps the first message's reads large.
  const std::size_t tail = size / 4;
  const std::size_t head = size - tail;
  iovec iov[2] = {{data, head}, {data + head, tail}};
  mmsghdr msgs[2]{};
  msgs[0].msg_hdr.msg_iov = &iov[0];
  msgs[0].msg_hdr.msg_iovlen = 1;
  msgs[1].msg_hdr.msg_iov = &iov[1];
  msgs[1].msg_hdr.msg_iovlen = 1;
  const unsigned count = tail > 0 ? 2 : 1;
  int got;
  do {
    got = ::recvmmsg(fd, msgs, count, MSG_DONTWAIT, nullptr);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      r.would_block = true;
    else
      r.error = errno;
    return r;
  }
  const std::size_t first = msgs[0].msg_len;
  if (got == 1) {
    r.bytes = first;
    r.drained = first > 0 && count == 2;  // the second found nothing
    return r;
  }
  // Two messages: the second found EOF (0 bytes: reported on the next read) or more bytes,
  // which go right after the first's.
  const std::size_t second = msgs[1].msg_len;
  if (second > 0 && first < head) std::memmove(data + first, data + head, second);
  r.bytes = first + second;
  return r;
}

}  // namespace portico::proxy
