#pragma once
// One receive from a non-blocking TCP socket that also tells whether the socket was left
// empty, in one syscall: recvmsg() with the kernel's TCP_INQ hint (the bytes still queued
// after this read, as a control message; non-zero once a FIN or a reset is queued). No bytes
// left means the socket is drained, so the next read can wait for epoll's next edge instead of
// trying at once. A plain recv() cannot tell a drained socket from one whose FIN was queued
// behind the bytes it returned.
#include <cstddef>

namespace portico::proxy {

struct DrainingReceive {
  std::size_t bytes = 0;     // received, at the start of the buffer; 0 at EOF
  int error = 0;             // errno of a failed receive (not EAGAIN)
  bool would_block = false;  // nothing to read: wait for the socket
  bool drained = false;      // bytes were read and the socket had nothing more
};

// Asks the kernel for the hint on a socket (TCP_INQ; accepted sockets inherit it from their
// listener). A socket without it is never reported drained: its reads behave as Asio's own.
void enableDrainHint(int fd);

// Known limit: the hint counts a queued FIN, not a reset queued behind the bytes; the read is
// then taken as drained and the reset surfaces at the socket's next epoll event (the error
// edge, when the reset came after the last one) or at the reader's timeout.
DrainingReceive receiveDraining(int fd, char* data, std::size_t size);

// A plain recv() that takes a short read (fewer bytes than `size`) as drained. Cheaper in the
// kernel than receiveDraining() (no msghdr, iovec or control message to copy), but blind to a
// FIN or reset queued behind the bytes: only for a reader that then knows whether it needs
// more (see readAnswerStart in socket_read.h).
DrainingReceive receiveShortDrained(int fd, char* data, std::size_t size);

}  // namespace portico::proxy
