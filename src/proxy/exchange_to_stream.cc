#include "proxy/exchange.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace portico::proxy::detail {

Task<ExchangeResult> Exchange::relayResponseToStream(ResponseStream& h2,
                                                     std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  ExchangeResult result{true, true, resp.status, ""};
  const bool no_body = resp.framing == http::BodyFraming::None;
  const bool head_sent = co_await h2.sendHead(resp, no_body);
  if (!head_sent) co_return ExchangeResult{true, false, resp.status, "client closed"};
  if (no_body) {
    recycle(std::move(conn));
    co_return result;
  }
  IoBuffer& buf = conn->buffer;
  bool upstream_ok = true;
  std::uint64_t remaining = resp.content_length;
  http::ChunkedDecoder decoder;
  decoder.keepTrailers(true);
  std::vector<asio::const_buffer>& spans = spans_;
  error_code ec;
  for (;;) {
    std::string_view avail = buf.readable();
    std::size_t take = 0;
    bool done = false;
    spans.clear();
    switch (resp.framing) {
      case http::BodyFraming::ContentLength:
        take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, avail.size()));
        remaining -= take;
        done = remaining == 0;
        if (take || done) spans.push_back(asio::buffer(avail.data(), take));
        break;
      case http::BodyFraming::Chunked: {
        auto step = decoder.feed(avail, [&](std::string_view data) {
          spans.push_back(asio::buffer(data.data(), data.size()));
        });
        if (step.status == http::ChunkedDecoder::Status::Error) {
          upstream_ok = false;
          done = true;
          spans.clear();
          break;
        }
        take = step.consumed;
        done = step.status == http::ChunkedDecoder::Status::Done;
        break;
      }
      default:  // until close
        take = avail.size();
        if (take) spans.push_back(asio::buffer(avail.data(), take));
        break;
    }
    if (!upstream_ok) break;
    const bool trailers = done && !decoder.trailers().empty();
    if (done && !trailers && spans.empty()) spans.push_back(asio::const_buffer());
    for (std::size_t i = 0; i < spans.size(); ++i) {
      std::string_view data(static_cast<const char*>(spans[i].data()), spans[i].size());
      ctx_.bytes_sent += data.size();
      io_.armOp(io_.limits().idle_timeout);
      const bool sent = co_await h2.sendData(data, done && !trailers && i + 1 == spans.size());
      io_.disarmOp();
      if (!sent) co_return ExchangeResult{true, false, resp.status, "client closed"};
    }
    bool trailers_sent = true;
    if (trailers) trailers_sent = co_await h2.sendTrailers(decoder.trailers());
    if (!trailers_sent) co_return ExchangeResult{true, false, resp.status, "client closed"};
    buf.consume(take);
    if (done) break;
    io_.armOp(cfg_.timeouts.read);
    std::size_t n = co_await readSome(conn->socket, conn->tlsStream(),
                                      asio::buffer(buf.writePtr(), buf.writable()), ec);
    io_.disarmOp();
    if (ec || n == 0 || io_.totalExpired()) {
      const bool closed = ec == asio::error::eof || (!ec && n == 0);
      if (resp.framing == http::BodyFraming::UntilClose && closed && !io_.totalExpired()) {
        const bool sent = co_await h2.sendData({}, true);
        if (!sent) co_return ExchangeResult{true, false, resp.status, "client closed"};
        co_return result;
      }
      upstream_ok = false;
      break;
    }
    buf.commit(n);
  }
  if (!upstream_ok) {
    // Cut short: the stream is reset (keep_client false), not ended as if complete.
    stats_->failures.add();
    co_return ExchangeResult{true, false, resp.status, "upstream body cut short"};
  }
  recycle(std::move(conn));
  co_return result;
}

Task<void> Exchange::pumpUpstreamToStream(ResponseStream& out, UpstreamConnection& conn, bool& done,
                                          Timer& finished) {
  IoBuffer& buf = conn.buffer;
  error_code ec;
  bool open = true;
  if (!buf.empty()) {  // what the upstream sent right after its 101
    ctx_.bytes_sent += buf.size();
    open = co_await out.sendData(buf.readable(), false);
    buf.clear();
  }
  while (open) {
    std::size_t n = co_await readSome(conn.socket, conn.tlsStream(),
                                      asio::buffer(buf.writePtr(), buf.writable()), ec);
    if (ec || n == 0) break;
    io_.armOp(hooks_.tunnel.idle);
    open = co_await out.sendData(std::string_view(buf.writePtr(), n), false);
    ctx_.bytes_sent += n;
  }
  if (open) co_await out.sendData({}, true);
  done = true;
  io_.cancelRead();  // ends the other direction
  finished.cancel();
}

Task<ExchangeResult> Exchange::tunnelStream(ResponseStream& out,
                                            std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  if (hooks_.response_head && hooks_.response_head()) co_await hooks_.response_head_async();
  resp.status = 200;
  resp.reason.clear();
  resp.headers.remove("sec-websocket-accept");  // belongs to the HTTP/1.1 handshake
  resp.framing = http::BodyFraming::Chunked;    // open-ended: no content-length
  const bool head_sent = co_await out.sendHead(resp, false);
  if (!head_sent) co_return ExchangeResult{true, false, 101, "client closed"};

  io_.setTotalDeadline(hooks_.tunnel.max_duration);
  w_.stats.tunnels_active.add();
  bool upstream_done = false;
  Timer finished(w_.io.get_executor(), Clock::time_point::max());
  asio::co_spawn(w_.io.get_executor(), pumpUpstreamToStream(out, *conn, upstream_done, finished),
                 asio::detached);
  error_code ec;
  for (;;) {
    io_.armOp(hooks_.tunnel.idle);
    auto space = asio::buffer(in_.writePtr(), in_.writable());
    std::size_t n = co_await io_.readClient(space, ec);
    if (ec || n == 0 || upstream_done) break;
    in_.commit(n);
    co_await writeAll(conn->socket, conn->tlsStream(), asio::buffer(in_.readable()), ec);
    if (ec) break;
    ctx_.bytes_received += in_.size();
    in_.clear();
  }
  conn->socket.close(ec);  // ends the other direction
  while (!upstream_done) co_await finished.async_wait(asio::redirect_error(kUseAwaitable, ec));
  w_.stats.tunnels_active.sub();
  io_.disarmOp();
  io_.setTotalDeadline({});
  co_return ExchangeResult{true, true, 200, ""};
}

}  // namespace portico::proxy::detail
