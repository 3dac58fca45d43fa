#include "proxy/exchange.h"

#include <type_traits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace portico::proxy::detail {

template <class Source>
Task<ExchangeResult> Exchange::relayToStream(ResponseStream& out, Source& src) {
  const int status = resp_.status;
  const ExchangeResult gone{true, false, status, "client closed"};
  const bool no_body = resp_.framing == http::BodyFraming::None;
  bool head_sent;
  if (auto at_once = out.sendHeadNow(resp_, no_body))
    head_sent = *at_once;
  else
    head_sent = co_await out.sendHead(resp_, no_body);
  if (!head_sent) co_return gone;
  if (no_body) co_return ExchangeResult{true, true, status, ""};
  std::vector<std::string_view>& pieces = pieces_;
  error_code ec;
  for (;;) {
    pieces.clear();
    BodyPieces p{pieces};
    src.next(p);
    if (p.failed) break;
    const bool ends_with_data = p.end && !p.trailers;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      ctx_.bytes_sent += pieces[i].size();
      const bool ends = ends_with_data && i + 1 == pieces.size();
      if (auto at_once = out.sendDataNow(pieces[i], ends)) {
        if (!*at_once) co_return gone;
        continue;
      }
      io_.armOp(io_.limits().idle_timeout);
      const bool sent = co_await out.sendData(pieces[i], ends);
      io_.disarmOp();
      if (!sent) co_return gone;
    }
    if (ends_with_data && pieces.empty()) {
      const bool sent = co_await out.sendData({}, true);
      if (!sent) co_return gone;
    } else if (p.end && p.trailers) {
      const bool sent = co_await out.sendTrailers(*p.trailers);
      if (!sent) co_return gone;
    }
    src.release();
    if (p.end) co_return ExchangeResult{true, true, status, ""};
    if (!pieces.empty()) continue;  // more may have come while these were sent
    io_.armOp(cfg_.timeouts.read);
    std::size_t n = 0;
    if constexpr (std::is_void_v<typename decltype(src.wait(ec))::value_type>) {
      co_await src.wait(ec);
    } else {
      n = co_await src.wait(ec);
    }
    const bool expired = io_.opTimedOut() || io_.totalExpired();
    io_.disarmOp();
    if (!src.arrived(n, ec, expired)) break;
  }
  // Cut short: the client must not take it as complete (HTTP/1 closes, HTTP/2 resets).
  stats_->failures.add();
  co_return ExchangeResult{true, false, status, "upstream body cut short"};
}

std::optional<ExchangeResult> Exchange::relayAtOnce(ResponseStream& out, H1BodySource& src) {
  const std::optional<std::size_t> body = src.bufferedWhole();
  if (!body || !out.sendsAtOnce(*body)) return std::nullopt;
  const int status = resp_.status;
  const bool no_body = resp_.framing == http::BodyFraming::None;
  const std::optional<bool> head_sent = out.sendHeadNow(resp_, no_body);
  if (!head_sent) return std::nullopt;  // nothing sent: relayToStream does it all
  const ExchangeResult gone{true, false, status, "client closed"};
  if (!*head_sent) return gone;
  if (no_body) return ExchangeResult{true, true, status, ""};
  std::vector<std::string_view>& pieces = pieces_;
  pieces.clear();
  BodyPieces p{pieces};
  src.next(p);  // all of the body, and its end
  const std::string_view data = pieces.empty() ? std::string_view() : pieces.front();
  ctx_.bytes_sent += data.size();
  // sendsAtOnce() said it would take this: a stream breaking that promise loses the response.
  if (!out.sendDataNow(data, true).value_or(false)) return gone;
  src.release();
  return ExchangeResult{true, true, status, ""};
}

template Task<ExchangeResult> Exchange::relayToStream(ResponseStream&, H1BodySource&);
template Task<ExchangeResult> Exchange::relayToStream(ResponseStream&, H2BodySource&);

void H1BodySource::next(BodyPieces& p) {
  const std::string_view avail = conn_.buffer.readable();
  take_ = 0;
  switch (resp_.framing) {
    case http::BodyFraming::ContentLength:
      take_ = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, avail.size()));
      remaining_ -= take_;
      p.end = remaining_ == 0;
      if (take_) p.data.push_back(avail.substr(0, take_));
      break;
    case http::BodyFraming::Chunked: {
      auto step = decoder_.feed(avail, [&](std::string_view data) { p.data.push_back(data); });
      if (step.status == http::ChunkedDecoder::Status::Error) {
        p.failed = true;
        return;
      }
      take_ = step.consumed;
      p.end = step.status == http::ChunkedDecoder::Status::Done;
      if (p.end && !decoder_.trailers().empty()) p.trailers = &decoder_.trailers();
      break;
    }
    default:  // until close
      take_ = avail.size();
      if (take_) p.data.push_back(avail);
      p.end = closed_;
      break;
  }
  complete_ = p.end;
}

bool H1BodySource::arrived(std::size_t n, const error_code& ec, bool expired) {
  if (!ec && n > 0 && !expired) {
    conn_.buffer.commit(n);
    return true;
  }
  // The upstream closing ends an until-close body; anything else cuts the body short.
  const bool closed = ec == asio::error::eof || (!ec && n == 0);
  if (resp_.framing != http::BodyFraming::UntilClose || !closed || expired) return false;
  closed_ = true;
  return true;
}

Task<void> Exchange::pumpUpstreamToStream(ResponseStream& out, UpstreamConnection& conn, bool& done,
                                          WakeEvent& finished) {
  IoBuffer& buf = conn.buffer;
  error_code ec;
  bool open = true;
  if (!buf.empty()) {  // what the upstream sent right after its 101
    ctx_.bytes_sent += buf.size();
    open = co_await out.sendData(buf.readable(), false);
    buf.clear();
  }
  while (open) {
    std::size_t n =
        co_await readMore(conn.socket, conn.tlsStream(),
                          asio::buffer(buf.writePtr(), buf.writable()), conn.read_unsure, ec);
    if (ec || n == 0) break;
    io_.armOp(hooks_.tunnel.idle);
    open = co_await out.sendData(std::string_view(buf.writePtr(), n), false);
    ctx_.bytes_sent += n;
  }
  if (open) co_await out.sendData({}, true);
  done = true;
  io_.cancelRead();  // ends the other direction
  finished.wake();
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
  WakeEvent finished(w_.io.get_executor());
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
