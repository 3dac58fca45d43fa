#include "proxy/tls_stream.h"

#include <openssl/err.h>

#include <cerrno>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

namespace portico::proxy {

using boost::system::error_code;

namespace {

// SSL_get_error reads the thread's error queue, which must hold nothing older than the call.
// Peeking is cheap; clearing (16 slots) is only done when something is there.
void clearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

TlsStream::TlsStream(Socket& socket, asio::ssl::context& context)
    : socket_(socket), ssl_(SSL_new(context.native_handle())) {
  error_code ec;
  socket_.non_blocking(true, ec);
  SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_read_ahead(ssl_, 1);  // one read() per batch of records, not two per record
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

Task<bool> TlsStream::settle(int ret, error_code& ec) {
  const int err = SSL_get_error(ssl_, ret);
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
