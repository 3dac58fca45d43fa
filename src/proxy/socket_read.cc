#include "proxy/socket_read.h"

#include <boost/version.hpp>

#include "core/io_buffer.h"
#include "proxy/draining_receive.h"
#include "proxy/tls_stream.h"

// Asio's epoll reactor skips the speculative attempt of a read when the socket's last read
// operation reported "done and exhausted" and no epoll event came since; its own receive
// reports that only at EOF. A receive operation for our buffer type (below) also reports it
// when receiveDraining() saw the socket empty after the bytes it took. The operation's shape is
// Asio's (Boost 1.81, the version Debian ships and ADR 0016 pins); with another Boost, or the
// io_uring backend, reads fall back to Asio's own receive.
#if BOOST_VERSION / 100 == 1081 && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define PORTICO_DRAIN_AWARE_READS 1
#else
#define PORTICO_DRAIN_AWARE_READS 0
#endif

namespace portico::proxy {

// What a receive that ran (not would_block) tells its reader: its errno, EOF for no bytes, or
// nothing.
inline boost::system::error_code receiveError(const DrainingReceive& r) {
  if (r.error != 0) return {r.error, boost::system::system_category()};
  if (r.bytes == 0) return asio::error::eof;
  return {};
}

// With `unsure` (readAnswerStart, readParked for HTTP/1.1 clients): a plain recv() that takes
// a short read for drained and records whether it was one (a FIN could hide behind it);
// without: recvmsg() with the kernel's hint.
inline DrainingReceive receiveInto(int fd, char* data, std::size_t size, bool* unsure) {
  if (!unsure) return receiveDraining(fd, data, size);
  const DrainingReceive r = receiveShortDrained(fd, data, size);
  *unsure = r.drained;
  return r;
}

// A buffer whose receive operation knows when it drained the socket.
struct DrainingBuffer : asio::mutable_buffer {
  explicit DrainingBuffer(asio::mutable_buffer b, bool* unsure_flag = nullptr)
      : asio::mutable_buffer(b), unsure(unsure_flag) {}
  DrainingReceive receive(int fd) const {
    return receiveInto(fd, static_cast<char*>(data()), size(), unsure);
  }
  bool* unsure;
};

// A "receive" that reads nothing: it completes on the socket's next epoll edge, or at once when
// an edge came since the last operation that drained the socket. Asio's async_wait would arm
// the socket with epoll_ctl on every wait instead. (One byte long: Asio completes empty reads
// without waiting.)
struct EdgeWaitBuffer : asio::mutable_buffer {
  EdgeWaitBuffer() : asio::mutable_buffer(&never_written, 1) {}
  static inline char never_written = 0;
};

// A parked buffer's receive (readParked): takes the pool's storage when the receive runs, and
// parks it again when the socket had nothing (a speculative attempt).
struct ParkedBuffer : asio::mutable_buffer {
  ParkedBuffer(IoBuffer& buffer, BufferPool& buffers, bool* unsure_flag)
      : asio::mutable_buffer(&EdgeWaitBuffer::never_written, 1),
        in(&buffer),
        pool(&buffers),
        unsure(unsure_flag) {}
  DrainingReceive receive(int fd) const {
    in->unpark(*pool);
    const DrainingReceive r = receiveInto(fd, in->writePtr(), in->writable(), unsure);
    if (r.would_block) in->park(*pool);
    return r;
  }
  IoBuffer* in;
  BufferPool* pool;
  bool* unsure;
};

}  // namespace portico::proxy

#if PORTICO_DRAIN_AWARE_READS
#include <boost/asio/detail/reactive_socket_recv_op.hpp>

namespace boost::asio::detail {

// The receive of a buffer that reports whether it drained the socket (DrainingBuffer,
// ParkedBuffer): "exhausted" when it saw the socket empty behind the bytes (or at EOF), so the
// next receive waits for epoll's edge instead of trying at once.
template <class Buffer>
class drain_aware_recv_op : public reactor_op {
 public:
  drain_aware_recv_op(const boost::system::error_code& success_ec, socket_type socket,
                      socket_ops::state_type, const Buffer& buffer, socket_base::message_flags,
                      func_type complete_func)
      : reactor_op(success_ec, &drain_aware_recv_op::do_perform, complete_func),
        socket_(socket),
        buffer_(buffer) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<drain_aware_recv_op*>(base);
    const portico::proxy::DrainingReceive r = o->buffer_.receive(o->socket_);
    if (r.would_block) return not_done;
    o->bytes_transferred_ = r.bytes;
    o->ec_ = portico::proxy::receiveError(r);
    if (r.error != 0) return done;
    return r.bytes == 0 || r.drained ? done_and_exhausted : done;
  }

 private:
  socket_type socket_;
  Buffer buffer_;
};

template <>
class reactive_socket_recv_op_base<portico::proxy::DrainingBuffer>
    : public drain_aware_recv_op<portico::proxy::DrainingBuffer> {
 public:
  using drain_aware_recv_op::drain_aware_recv_op;
};

template <>
class reactive_socket_recv_op_base<portico::proxy::ParkedBuffer>
    : public drain_aware_recv_op<portico::proxy::ParkedBuffer> {
 public:
  using drain_aware_recv_op::drain_aware_recv_op;
};

template <>
class reactive_socket_recv_op_base<portico::proxy::EdgeWaitBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type,
                               socket_ops::state_type, const portico::proxy::EdgeWaitBuffer&,
                               socket_base::message_flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func) {}

  // Performed at once only when an edge came since the socket was last drained; otherwise when
  // the next edge comes. Either way the caller reads next, and finds the socket drained again
  // before it waits: "exhausted" keeps the following wait from completing at once.
  static status do_perform(reactor_op*) { return done_and_exhausted; }
};

}  // namespace boost::asio::detail
#endif

namespace portico::proxy {

Task<std::size_t> readPlain(Socket& socket, asio::mutable_buffer buffer,
                            boost::system::error_code& ec) {
#if PORTICO_DRAIN_AWARE_READS
  return socket.async_read_some(DrainingBuffer(buffer), asio::redirect_error(kUseAwaitable, ec));
#else
  return socket.async_read_some(buffer, asio::redirect_error(kUseAwaitable, ec));
#endif
}

#if PORTICO_DRAIN_AWARE_READS
Task<std::size_t> waitReadable(Socket& socket, boost::system::error_code& ec) {
  return socket.async_read_some(EdgeWaitBuffer(), asio::redirect_error(kUseAwaitable, ec));
}
#else
Task<std::size_t> waitReadable(Socket& socket, boost::system::error_code& ec) {
  co_await socket.async_wait(Socket::wait_read, asio::redirect_error(kUseAwaitable, ec));
  co_return 0;
}
#endif

Task<std::size_t> readSome(Socket& socket, TlsStream* tls, asio::mutable_buffer buffer,
                           boost::system::error_code& ec) {
  if (tls) return tls->readSome(buffer, ec);
  return readPlain(socket, buffer, ec);
}

Task<std::size_t> readAnswerStart(Socket& socket, TlsStream* tls, asio::mutable_buffer buffer,
                                  bool& unsure, boost::system::error_code& ec) {
  unsure = false;
#if PORTICO_DRAIN_AWARE_READS
  if (!tls)
    return socket.async_read_some(DrainingBuffer(buffer, &unsure),
                                  asio::redirect_error(kUseAwaitable, ec));
#endif
  return readSome(socket, tls, buffer, ec);
}

namespace {

// After an unsure short read: one receive at once, which finds a FIN (or bytes) queued behind
// that read's bytes; only an empty socket waits for its next edge.
Task<std::size_t> readAfterShortRead(Socket& socket, asio::mutable_buffer buffer, bool& unsure,
                                     boost::system::error_code& ec) {
  unsure = false;
  const DrainingReceive r =
      receiveDraining(socket.native_handle(), static_cast<char*>(buffer.data()), buffer.size());
  if (r.would_block) co_return co_await readPlain(socket, buffer, ec);
  ec = receiveError(r);
  // Bytes with more queued behind them: Asio still takes the socket for drained (the short
  // read said so), so the next read must look at once again.
  unsure = !ec && !r.drained;
  co_return r.bytes;
}

}  // namespace

Task<std::size_t> readMore(Socket& socket, TlsStream* tls, asio::mutable_buffer buffer,
                           bool& unsure, boost::system::error_code& ec) {
  if (unsure && !tls) return readAfterShortRead(socket, buffer, unsure, ec);
  return readSome(socket, tls, buffer, ec);
}

namespace {

// Waits for input without a buffer, then reads as readSome() does (TLS with `short_read`:
// readMessageStart).
Task<std::size_t> readParkedAfterWait(Socket& socket, TlsStream* tls, IoBuffer& in,
                                      BufferPool& pool, boost::system::error_code& ec,
                                      bool short_read) {
  if (tls) {
    co_await tls->waitForInput(ec);
  } else {
    co_await socket.async_wait(Socket::wait_read, asio::redirect_error(kUseAwaitable, ec));
  }
  if (ec) co_return 0;
  in.unpark(pool);
  const asio::mutable_buffer space(in.writePtr(), in.writable());
  if (tls && short_read) co_return co_await tls->readMessageStart(space, ec);
  co_return co_await readSome(socket, tls, space, ec);
}

}  // namespace

Task<std::size_t> readParked(Socket& socket, TlsStream* tls, IoBuffer& in, BufferPool& pool,
                             boost::system::error_code& ec, bool* unsure) {
  // `*unsure` stays as the last read left it until this one receives: the wait may be the one
  // with a FIN hidden behind that read.
#if PORTICO_DRAIN_AWARE_READS
  if (!tls)
    return socket.async_read_some(ParkedBuffer(in, pool, unsure),
                                  asio::redirect_error(kUseAwaitable, ec));
#endif
  return readParkedAfterWait(socket, tls, in, pool, ec, unsure != nullptr);
}

}  // namespace portico::proxy
