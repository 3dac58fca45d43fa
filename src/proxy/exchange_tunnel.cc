#include "proxy/exchange.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace portico::proxy::detail {

Task<void> Exchange::pumpUpstreamToClient(UpstreamConnection& conn, bool& done,
                                          WakeEvent& finished) {
  IoBuffer& buf = conn.buffer;
  error_code ec;
  for (;;) {
    std::size_t n =
        co_await readMore(conn.socket, conn.tlsStream(),
                          asio::buffer(buf.writePtr(), buf.writable()), conn.read_unsure, ec);
    if (ec || n == 0) break;
    io_.armOp(hooks_.tunnel.idle);
    co_await writeAll(io_.client(), io_.clientTls(), asio::buffer(buf.writePtr(), n), ec);
    if (ec) break;
    ctx_.bytes_sent += n;
    io_.armOp(hooks_.tunnel.idle);
  }
  done = true;
  io_.client().cancel(ec);  // ends the other direction
  finished.wake();
}

Task<ExchangeResult> Exchange::tunnel(std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  if (hooks_.response_head && hooks_.response_head()) co_await hooks_.response_head_async();
  ResponseFraming framing;
  framing.keep_alive = false;
  out_.clear();
  writeResponseHead(out_, resp, framing);
  error_code ec;
  // The 101 head, with whatever the upstream already sent after it.
  std::array<asio::const_buffer, 2> first{asio::buffer(out_),
                                          asio::buffer(conn->buffer.readable())};
  io_.armOp(hooks_.tunnel.idle);
  std::size_t n = 0;
  n = co_await writeAll(io_.client(), io_.clientTls(), first, ec);
  ctx_.bytes_sent += n;
  conn->buffer.clear();
  if (ec) co_return ExchangeResult{true, false, 101, "client closed"};

  io_.setTotalDeadline(hooks_.tunnel.max_duration);
  w_.stats.tunnels_active.add();
  bool upstream_done = false;
  WakeEvent finished(w_.io.get_executor());
  asio::co_spawn(w_.io.get_executor(), pumpUpstreamToClient(*conn, upstream_done, finished),
                 asio::detached);
  // Client to upstream here, starting with what the client sent after its request head.
  for (;;) {
    if (!in_.empty()) {
      io_.armOp(hooks_.tunnel.idle);
      co_await writeAll(conn->socket, conn->tlsStream(), asio::buffer(in_.readable()), ec);
      if (ec) break;
      ctx_.bytes_received += in_.size();
      in_.clear();
    }
    if (upstream_done) break;
    io_.armOp(hooks_.tunnel.idle);
    auto space = asio::buffer(in_.writePtr(), in_.writable());
    n = co_await io_.readClient(space, ec);
    if (ec || n == 0) break;
    in_.commit(n);
  }
  conn->socket.close(ec);  // ends the other direction
  if (!upstream_done) co_await finished.async_wait(asio::redirect_error(kUseAwaitable, ec));
  w_.stats.tunnels_active.sub();
  io_.disarmOp();
  io_.setTotalDeadline({});
  co_return ExchangeResult{true, false, 101, ""};
}

}  // namespace portico::proxy::detail
