#pragma once
// One receive from a non-blocking TCP socket that also tells whether the socket was left
// empty, in one syscall: recvmmsg() with two messages, where the second (the buffer's tail)
// runs on whatever the first left. The second finding nothing (EAGAIN) means the socket is
// drained, so the next read can wait for epoll's next edge instead of trying at once; finding
// EOF, or more bytes, means it is not. A plain recv() cannot tell a drained socket from one
// whose FIN was queued behind the bytes it returned.
#include <cstddef>

namespace portico::proxy {

struct DrainingReceive {
  std::size_t bytes = 0;     // received, contiguous at the start of the buffer; 0 at EOF
  int error = 0;             // errno of a failed receive (not EAGAIN)
  bool would_block = false;  // nothing to read: wait for the socket
  bool drained = false;      // bytes were read and the socket had nothing more
};

// Known limit: when the second message fails with an error (a reset queued behind the bytes),
// recvmmsg() reports only the first; `drained` is then set and the error surfaces on the read
// after the next epoll event, or at the reader's timeout.
DrainingReceive receiveDraining(int fd, char* data, std::size_t size);

}  // namespace portico::proxy
