#include "proxy/tls_stream.h"

#include <openssl/err.h>

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

#include "proxy/draining_receive.h"
#include "proxy/socket_read.h"

namespace portico::proxy {

using boost::system::error_code;

namespace {

// SSL_get_error reads the thread's error queue, which must hold nothing older than the call.
// Peeking is cheap; clearing (16 slots) is only done when something is there.
void clearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

// OpenSSL's socket BIO, with reads that know when they drained the socket. Errors and EOF are
// reported as the socket BIO does (errno; BIO_CTRL_EOF), so OpenSSL tells them apart the same.
struct SocketBio {
  static TlsStream& stream(BIO* b) { return *static_cast<TlsStream*>(BIO_get_data(b)); }
  static int fd(BIO* b) { return static_cast<int>(stream(b).socket_.native_handle()); }

  static int read(BIO* b, char* out, size_t len, size_t* got) {
    TlsStream& s = stream(b);
    BIO_clear_retry_flags(b);
    DrainingReceive r;
    if (s.drained_) {
      if (!s.unsure_) {
        BIO_set_retry_read(b);
        return 0;
      }
      // The last read was a short plain recv(): a FIN queued behind its bytes would bring no
      // edge, so look once at once (as readMore does on a plain socket).
      s.unsure_ = false;
      r = receiveDraining(fd(b), out, len);
    } else if (s.short_reads_) {
      r = receiveShortDrained(fd(b), out, len);
      s.unsure_ = r.drained;
    } else {
      r = receiveDraining(fd(b), out, len);
    }
    if (r.would_block) {
      s.drained_ = true;
      BIO_set_retry_read(b);
      return 0;
    }
    if (r.error != 0) {
      errno = r.error;
      return 0;
    }
    if (r.bytes == 0) {
      s.eof_ = true;
      return 0;
    }
    s.drained_ = r.drained;
    *got = r.bytes;
    return 1;
  }

  static int write(BIO* b, const char* in, size_t len, size_t* written) {
    BIO_clear_retry_flags(b);
    ssize_t n;
    do {
      n = ::send(fd(b), in, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      *written = static_cast<size_t>(n);
      return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    return 0;
  }

  static long ctrl(BIO* b, int cmd, long, void* ptr) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_EOF:
        return stream(b).eof_ ? 1 : 0;
      case BIO_C_GET_FD:  // SSL_get_fd and kin, as on a socket BIO
        if (ptr) *static_cast<int*>(ptr) = fd(b);
        return fd(b);
      default:
        return 0;
    }
  }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  // Made once per process, immutable afterwards.
  static const BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portico socket");
      BIO_meth_set_read_ex(bm, &SocketBio::read);
      BIO_meth_set_write_ex(bm, &SocketBio::write);
      BIO_meth_set_ctrl(bm, &SocketBio::ctrl);
      BIO_meth_set_create(bm, &SocketBio::create);
      return bm;
    }();
    return m;
  }
};

TlsStream::TlsStream(Socket& socket, asio::ssl::context& context)
    : socket_(socket), ssl_(SSL_new(context.native_handle())) {
  error_code ec;
  socket_.non_blocking(true, ec);
  BIO* bio = BIO_new(SocketBio::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // the SSL owns it (one reference for both directions)
  // Released buffers: OpenSSL frees its 17 KiB read and write buffers whenever they are empty
  // (an idle connection keeps neither), as nginx and HAProxy ask it to.
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_set_read_ahead(ssl_, 1);  // one read() per batch of records, not two per record
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

Task<bool> TlsStream::settle(int ret, error_code& ec) {
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ && drained_) {
    co_await waitReadable(socket_, ec);  // the BIO found the socket empty
    drained_ = false;
    co_return !ec;
  }
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    co_await socket_.async_wait(err == SSL_ERROR_WANT_READ ? Socket::wait_read : Socket::wait_write,
                                asio::redirect_error(kUseAwaitable, ec));
    co_return !ec;
  }
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
    ec = err == SSL_ERROR_ZERO_RETURN || errno == 0
             ? error_code(asio::error::eof)
             : error_code(errno, boost::system::system_category());
  } else {
    ec = error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    if (!ec) ec = asio::error::connection_reset;
  }
  ERR_clear_error();
  co_return false;
}

Task<void> TlsStream::handshake(bool server, error_code& ec) {
  ec = {};
  for (;;) {
    clearStaleErrors();
    const int r = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (r == 1) co_return;
    const bool again = co_await settle(r, ec);
    if (!again) co_return;
  }
}

Task<std::size_t> TlsStream::readSome(asio::mutable_buffer buffer, error_code& ec) {
  ec = {};
  for (;;) {
    clearStaleErrors();
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
    if (r == 1) co_return n;
    const bool again = co_await settle(r, ec);
    if (!again) co_return 0;
  }
}

Task<std::size_t> TlsStream::readMessageStart(asio::mutable_buffer buffer, error_code& ec) {
  // Only the reads OpenSSL makes for this call: later ones (the rest of a request, a tunnel)
  // keep the hint, as on a plain socket.
  struct ShortReads {
    explicit ShortReads(bool& on) : flag(on) { flag = true; }
    ~ShortReads() { flag = false; }
    bool& flag;
  } short_reads(short_reads_);
  co_return co_await readSome(buffer, ec);
}

Task<void> TlsStream::waitForInput(error_code& ec) {
  ec = {};
  if (SSL_has_pending(ssl_) || !drained_) co_return;
  co_await waitReadable(socket_, ec);
  drained_ = false;
}

bool TlsStream::writeAtOnce(asio::const_buffer buffer) {
  clearStaleErrors();
  std::size_t n = 0;
  return SSL_write_ex(ssl_, buffer.data(), buffer.size(), &n) == 1;
}

Task<std::size_t> TlsStream::write(asio::const_buffer buffer, error_code& ec) {
  ec = {};
  for (;;) {
    clearStaleErrors();
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, buffer.data(), buffer.size(), &n);
    if (r == 1) co_return n;
    const bool again = co_await settle(r, ec);
    if (!again) co_return 0;
  }
}

}  // namespace portico::proxy
