#pragma once
// TLS on a worker's socket, driven directly: OpenSSL reads and writes the (non-blocking) socket
// itself, through a small BIO of ours, and the coroutine waits for readiness only when OpenSSL
// asks for it. Compared with asio::ssl::stream this skips the memory-BIO pair (two copies per
// record) and the engine's state machine. The BIO reads with receiveDraining() (or, for a
// message's first bytes, receiveShortDrained()): a read that left the socket empty makes the
// next one wait for epoll's edge (no read that finds nothing, no epoll_ctl per wait: ADR 0017). One
// read and one write may be pending at once (a tunnel's two directions), as with any socket.
#include <openssl/ssl.h>

#include "proxy/io_types.h"

namespace portico::proxy {

class TlsStream {
 public:
  TlsStream(Socket& socket, asio::ssl::context& context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  SSL* native_handle() { return ssl_; }

  Task<void> handshake(bool server, boost::system::error_code& ec);
  // Some bytes, or 0 with `ec` set (eof on a clean close).
  Task<std::size_t> readSome(asio::mutable_buffer buffer, boost::system::error_code& ec);
  // readSome() for the first bytes of a message after waitForInput() (an HTTP/1.1 client's
  // next request: readParked). The BIO's receives are a plain recv() then, and a short one
  // counts as drained: cheaper in the kernel than recvmsg() with the hint, but blind to a FIN
  // queued behind the bytes (ADR 0017). readUnsure() tells whether the last receive was such a
  // short one; the next read of the stream then receives once at once before it waits, and a
  // wait for input may miss that FIN (HttpSession looks for it when idle a while).
  Task<std::size_t> readMessageStart(asio::mutable_buffer buffer, boost::system::error_code& ec);
  bool readUnsure() const { return unsure_; }
  // The owner looked at the socket itself (MSG_PEEK) and found no FIN hidden.
  void lookedForHiddenFin() { unsure_ = false; }
  // Returns when a read may find bytes: at once when OpenSSL holds some or the socket was not
  // seen empty, else on the socket's next edge. Lets a connection wait for its next request
  // before it takes a buffer (readParked).
  Task<void> waitForInput(boost::system::error_code& ec);
  // All of `buffer`.
  Task<std::size_t> write(asio::const_buffer buffer, boost::system::error_code& ec);
  // All of `buffer` when OpenSSL and the socket take it without waiting: true. Else false, and
  // write() with the same buffer finishes it (OpenSSL resumes the record it began) or reports
  // the failure. Spares the coroutine frames of write() on the common path.
  bool writeAtOnce(asio::const_buffer buffer);

  template <class Buffers>
  Task<std::size_t> writeAll(const Buffers& buffers, boost::system::error_code& ec) {
    std::size_t total = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      total += co_await write(b, ec);
      if (ec) break;
    }
    co_return total;
  }

 private:
  // After an SSL call returned `ret`: waits for what OpenSSL wants and returns true to retry,
  // or sets `ec` and returns false.
  Task<bool> settle(int ret, boost::system::error_code& ec);

  friend struct SocketBio;

  Socket& socket_;
  SSL* ssl_;
  bool drained_ = false;      // the BIO's last read found the socket empty: wait before reading
  bool eof_ = false;          // the BIO read the peer's FIN
  bool short_reads_ = false;  // readMessageStart() is reading: plain recv(), short is drained
  bool unsure_ = false;       // drained_ came from a short plain recv(): a FIN may hide behind
};

}  // namespace portico::proxy
