// HTTP/1 upstream responses to the client: relayed as raw HTTP/1 bytes (relayResponse, at once
// when whole in the buffer), or through a ResponseStream (relayH1ToStream: an HTTP/2 client,
// transforms); the connection back to the pool when the body ended well.
#include <array>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/exchange.h"

namespace portico::proxy::detail {

std::optional<ExchangeResult> Exchange::relayH1AtOnce(std::unique_ptr<UpstreamConnection>& conn) {
  ResponseStream* out = io_.responseStream();
  if (!out || transforming()) return std::nullopt;
  H1BodySource body(*conn, resp_);
  std::optional<ExchangeResult> r = relayAtOnce(*out, body);
  if (r && (body.complete() || resp_.framing == http::BodyFraming::None)) recycle(std::move(conn));
  return r;
}

// Apart from attempt(): its sink (an HTTP/1 writer, transforms) and body source would grow
// attempt's coroutine frame for every request, relayed this way or not.
Task<ExchangeResult> Exchange::relayH1ToStream(std::unique_ptr<UpstreamConnection> conn) {
  ClientSink sink;
  ResponseStream& out = clientSink(sink);
  H1BodySource body(*conn, resp_);
  ExchangeResult r = settle(sink, co_await relayToStream(out, body));
  if (body.complete() || resp_.framing == http::BodyFraming::None) recycle(std::move(conn));
  co_return r;
}

ResponseFraming Exchange::clientFraming() const {
  const http::ResponseHead& resp = resp_;
  const bool to_http10 = req_.version_minor == 0;
  ResponseFraming framing;
  framing.client_version_minor = req_.version_minor;
  framing.chunked = resp.framing == http::BodyFraming::Chunked && !to_http10;
  framing.until_close = resp.framing == http::BodyFraming::UntilClose ||
                        (resp.framing == http::BodyFraming::Chunked && to_http10);
  framing.keep_alive = req_.keep_alive && !framing.until_close && !w_.draining;
  return framing;
}

std::optional<ExchangeResult> Exchange::relayResponseAtOnce(
    std::unique_ptr<UpstreamConnection>& conn, bool& unsent) {
  const http::ResponseHead& resp = resp_;
  IoBuffer& buf = conn->buffer;
  const bool sized = resp.framing == http::BodyFraming::ContentLength;
  if (!sized && resp.framing != http::BodyFraming::None) return std::nullopt;
  if (sized && buf.size() < resp.content_length) return std::nullopt;
  const std::size_t body = sized ? static_cast<std::size_t>(resp.content_length) : 0;
  const ResponseFraming framing = clientFraming();
  out_.clear();
  writeResponseHead(out_, resp, framing);
  std::array<asio::const_buffer, 2> spans{asio::buffer(out_),
                                          asio::buffer(buf.readable().data(), body)};
  const ExchangeResult result{true, framing.keep_alive, resp.status, ""};
  if (TlsStream* tls = io_.clientTls()) {
    if (!joinForTls(spans, joined_)) return std::nullopt;  // nothing written
    unsent = !tls->writeAtOnce(asio::buffer(joined_));
    if (!unsent) ctx_.bytes_sent += joined_.size();
  } else {
    error_code ec;
    ctx_.bytes_sent += writeNow(io_.client(), spans, rest_, ec);
    if (ec) return ExchangeResult{true, false, resp.status, "client closed"};
    unsent = !rest_.empty();
  }
  if (unsent) return result;
  buf.consume(body);
  recycle(std::move(conn));
  return result;
}

Task<ExchangeResult> Exchange::finishRelay(std::unique_ptr<UpstreamConnection> conn,
                                           ExchangeResult result) {
  error_code ec;
  io_.armOp(io_.limits().idle_timeout);
  if (TlsStream* tls = io_.clientTls())
    ctx_.bytes_sent += co_await tls->write(asio::buffer(joined_), ec);
  else
    ctx_.bytes_sent += co_await writeAll(io_.client(), nullptr, rest_, ec);
  io_.disarmOp();
  if (ec) co_return ExchangeResult{true, false, result.status, "client closed"};
  if (resp_.framing == http::BodyFraming::ContentLength)
    conn->buffer.consume(static_cast<std::size_t>(resp_.content_length));
  recycle(std::move(conn));
  co_return result;
}

Task<ExchangeResult> Exchange::relayResponse(std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  const bool to_http10 = req_.version_minor == 0;
  const ResponseFraming framing = clientFraming();
  out_.clear();
  writeResponseHead(out_, resp, framing);

  ExchangeResult result{true, framing.keep_alive, resp.status, ""};
  IoBuffer& buf = conn->buffer;
  bool upstream_ok = true;  // the upstream body ended where its framing said
  bool head_pending = true;
  std::uint64_t remaining = resp.content_length;
  http::ChunkedDecoder decoder;
  std::vector<asio::const_buffer>& spans = spans_;
  error_code ec;
  for (;;) {
    std::string_view avail = buf.readable();
    std::size_t take = 0;
    bool done = false;
    spans.clear();
    if (head_pending) spans.push_back(asio::buffer(out_));
    switch (resp.framing) {
      case http::BodyFraming::None:
        done = true;
        break;
      case http::BodyFraming::ContentLength:
        take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, avail.size()));
        remaining -= take;
        done = remaining == 0;
        if (take) spans.push_back(asio::buffer(avail.data(), take));
        break;
      case http::BodyFraming::Chunked: {
        const std::size_t first_span = spans.size();
        auto step = decoder.feed(avail, [&](std::string_view data) {
          if (to_http10) spans.push_back(asio::buffer(data.data(), data.size()));
        });
        if (step.status == http::ChunkedDecoder::Status::Error) {
          upstream_ok = false;
          done = true;
          spans.resize(first_span);
          break;
        }
        take = step.consumed;
        done = step.status == http::ChunkedDecoder::Status::Done;
        if (!to_http10 && take) spans.push_back(asio::buffer(avail.data(), take));
        break;
      }
      case http::BodyFraming::UntilClose:
        take = avail.size();
        if (take) spans.push_back(asio::buffer(avail.data(), take));
        break;
    }
    if (!spans.empty()) {
      io_.armOp(io_.limits().idle_timeout);
      if (TlsStream* tls = io_.clientTls()) {
        if (writeJoinedAtOnce(*tls, spans, joined_))
          ctx_.bytes_sent += joined_.size();
        else
          ctx_.bytes_sent += co_await writeJoined(io_.client(), tls, spans, joined_, ec);
      } else {
        ctx_.bytes_sent += writeNow(io_.client(), spans, rest_, ec);
        if (!ec && !rest_.empty())
          ctx_.bytes_sent += co_await writeAll(io_.client(), nullptr, rest_, ec);
      }
      io_.disarmOp();
      if (ec) co_return ExchangeResult{true, false, resp.status, "client closed"};
    }
    head_pending = false;
    buf.consume(take);
    if (done) break;
    io_.armOp(cfg_.timeouts.read);
    std::size_t n =
        co_await readMore(conn->socket, conn->tlsStream(),
                          asio::buffer(buf.writePtr(), buf.writable()), conn->read_unsure, ec);
    io_.disarmOp();
    if (ec || n == 0 || io_.totalExpired()) {
      upstream_ok = resp.framing == http::BodyFraming::UntilClose && !ec && n == 0;
      if (resp.framing == http::BodyFraming::UntilClose && ec == asio::error::eof)
        upstream_ok = true;
      break;
    }
    buf.commit(n);
  }
  if (!upstream_ok) {
    // The body was cut short: the client must see the connection close, not a complete message.
    result.keep_client = false;
    stats_->failures.add();
    co_return result;
  }
  recycle(std::move(conn));
  co_return result;
}

ResponseStream& Exchange::clientSink(ClientSink& sink) {
  ResponseStream* out = io_.responseStream();
  if (!out) out = &sink.h1.emplace(io_, req_, out_, joined_);
  if (transforming())
    out = &sink.transform.emplace(*out, *hooks_.response_transforms, scratch_transform_error_,
                                  ctx_.request_id);
  return *out;
}

ExchangeResult Exchange::settle(const ClientSink& sink, ExchangeResult r) {
  if (sink.h1) r.keep_client = r.keep_client && sink.h1->keepAlive();
  if (!sink.transform || !sink.transform->failed()) return r;
  if (sink.transform->failedBeforeHead()) {
    // Nothing left yet: the client gets a whole error answer instead.
    return ExchangeResult{false, false, 502, scratch_transform_error_.c_str(), true};
  }
  r.keep_client = false;  // the head is out: the client must see the body cut
  r.error = "response body transform failed";
  r.upstream_ok = true;
  return r;
}

void Exchange::recycle(std::unique_ptr<UpstreamConnection> conn) {
  if (conn->tls && conn->requests == 1) {  // once per connection: its session is resumable
    if (SSL_SESSION* session = SSL_get1_session(conn->tls->native_handle()))
      w_.keepTlsSession(conn->target, session);
  }
  const http::ResponseHead& resp = resp_;
  if (resp.keep_alive && resp.framing != http::BodyFraming::UntilClose && conn->buffer.empty() &&
      !w_.draining) {
    w_.pool.release(std::move(conn), cfg_.pool, w_.time.coarseSteady());
  }
}

}  // namespace portico::proxy::detail
