#pragma once
// Reading a worker's socket without the read that finds nothing.
//
// Asio tries every read at once ("speculatively") and only waits for epoll when the socket has
// nothing: a proxy that reads the next request right after answering, or the upstream's answer
// right after sending the request, pays a recv() that fails with EAGAIN on both sides of every
// request (about 1.2 µs each on the bench machine: two syscalls out of six per request).
// nginx and HAProxy remember that a socket was drained and wait for the next edge instead.
// readSome() does the same: see socket_read.cc and docs/decisions/0017-drain-aware-reads.md.
#include "proxy/io_types.h"

namespace portico {
class BufferPool;
class IoBuffer;
}  // namespace portico

namespace portico::proxy {

class TlsStream;

// Some bytes from the socket (or, when `tls` is set, from the TLS stream on it), or 0 with
// `ec` set (eof on a clean close).
Task<std::size_t> readSome(Socket& socket, TlsStream* tls, asio::mutable_buffer buffer,
                           boost::system::error_code& ec);

// The same for a socket without TLS. Exposed for the unit tests of the drained-socket logic.
Task<std::size_t> readPlain(Socket& socket, asio::mutable_buffer buffer,
                            boost::system::error_code& ec);

// Reading an upstream's answer on a plain socket. readSome()'s receive asks the kernel whether
// bytes are left behind (TCP_INQ), which costs recvmsg()'s copies of the message header, the
// iovec and the control message on every read. The first read of an answer is a plain recv()
// instead, and a short read counts as drained — but a FIN or reset queued behind its bytes
// then gets no epoll edge of its own, so `unsure` is set and every further read of the same
// connection goes through readMore(), which receives once at once before it waits. A
// complete answer needs no further read: its connection goes back to the pool, where the next
// answer's first read sees a hidden FIN through the reset that the request written to it
// brings back (a stale pooled connection: replayed as one found closed). TLS reads as
// readSome() does.
Task<std::size_t> readAnswerStart(Socket& socket, TlsStream* tls, asio::mutable_buffer buffer,
                                  bool& unsure, boost::system::error_code& ec);
// Any read of a connection after readAnswerStart() or readParked() with `unsure` (the rest of
// a head or body, a tunnel).
Task<std::size_t> readMore(Socket& socket, TlsStream* tls, asio::mutable_buffer buffer,
                           bool& unsure, boost::system::error_code& ec);

// Some bytes into `in`, a parked buffer (IoBuffer::park) of a connection waiting for its next
// request: the buffer takes its storage from `pool` only once bytes are there (a plain
// socket's receive does it when it runs; TLS waits for the socket first, then reads as
// readSome does), so the wait holds none. The caller commits the bytes as after readSome().
// With `unsure` (an owner that can handle it, as readAnswerStart's callers do): the receive
// is a plain recv() and a short read counts as drained; `*unsure` tells whether the last read
// was such a short one, after which the connection reads on with readMore(), and a wait for
// the next message may miss a FIN hidden behind it (HttpSession looks for one when the
// connection has been idle a while). TLS: the stream keeps that state itself
// (TlsStream::readMessageStart, readUnsure) and `*unsure` is left alone.
Task<std::size_t> readParked(Socket& socket, TlsStream* tls, IoBuffer& in, BufferPool& pool,
                             boost::system::error_code& ec, bool* unsure = nullptr);

// Waits until the socket may be read, for a reader that just found it empty with
// receiveDraining() (TLS: OpenSSL reads through a BIO that does). Completes at once when epoll
// reported the socket since the last wait, so the caller must read and may find nothing.
Task<std::size_t> waitReadable(Socket& socket, boost::system::error_code& ec);

}  // namespace portico::proxy
