#include "proxy/exchange.h"

#include <charconv>
#include <optional>

#include "proxy/http1_response_stream.h"
#include "proxy/upstream_h2.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace portico::proxy::detail {

namespace {

// The upstream chose h2 by ALPN (an HTTP/2 upstream over TLS must).
bool negotiatedH2(UpstreamConnection& conn) {
  const unsigned char* alpn = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(conn.tls->native_handle(), &alpn, &len);
  return len == 2 && alpn[0] == 'h' && alpn[1] == '2';
}

// A request body waits while this much of it is queued for an upstream stream.
constexpr std::size_t kH2BodyHighWater = 64 * 1024;

}  // namespace

Task<AttemptOutcome> Exchange::attemptH2(const snapshot::UpstreamTarget& target, bool last) {
  const auto started = w_.time.steady();
  stats_->attempts.add();
  if (!w_.h2_pool) w_.h2_pool = std::make_shared<UpstreamH2Pool>();
  const std::string& key = poolKey(target, "h2|");
  std::shared_ptr<UpstreamH2Connection> h2 = w_.h2_pool->find(key);
  if (!h2) {
    auto conn = std::make_unique<UpstreamConnection>(w_.io);
    conn->target = key;
    Failure f = co_await connect(*conn, target);
    io_.setUpstreamSocket(nullptr);  // shared from now on: never cancelled for one request
    if (f != Failure::None) co_return AttemptOutcome{f, {}};
    if (conn->tls && !negotiatedH2(*conn)) co_return AttemptOutcome{Failure::Connect, {}};
    h2 = std::make_shared<UpstreamH2Connection>(w_, std::move(conn));
    h2->setIdleTimeout(cfg_.pool.idle_timeout);
    UpstreamH2Connection::start(h2);
    w_.h2_pool->add(key, h2);
  }
  writeUpstreamRequestFields(h2_fields_, req_, target_, up_.tls ? "https" : "http", info_);
  UpstreamH2Stream st(w_.io);
  const bool has_body = req_.framing != http::BodyFraming::None;
  const std::int32_t id = h2->open(st, h2_fields_, !has_body);
  if (id < 0) co_return AttemptOutcome{Failure::Connect, {}};
  io_.setUpstreamSignal(&st.signal);

  H2Pump pump(w_.io);
  pump.done = !has_body;
  if (has_body) asio::co_spawn(w_.io.get_executor(), pumpBodyH2(*h2, id, st, pump), asio::detached);

  // Ends the stream's use: the pump stops, the stream is reset if still open.
  auto finish = [&]() -> Task<void> {
    h2->detach(id);
    st.closed = true;
    st.wake();
    if (!pump.done) io_.cancelRead();
    error_code ec;
    while (!pump.done) co_await pump.finished.async_wait(asio::redirect_error(kUseAwaitable, ec));
    io_.setUpstreamSignal(nullptr);
  };

  Failure got = Failure::None;
  io_.armOp(cfg_.timeouts.read);
  while (!st.head) {
    if (st.closed) {
      got = Failure::Reset;
      break;
    }
    if (pump.failure != Failure::None) {
      got = pump.failure;
      break;
    }
    error_code ec;
    co_await st.signal.async_wait(asio::redirect_error(kUseAwaitable, ec));
    if (io_.totalExpired()) {
      got = Failure::TotalTimeout;
      break;
    }
    if (io_.opTimedOut()) {
      got = Failure::ReadTimeout;
      break;
    }
  }
  io_.disarmOp();
  const auto elapsed = w_.time.steady() - started;
  stats_->duration.observe(elapsed);
  if (got != Failure::None) {
    co_await finish();
    co_return AttemptOutcome{got, {}};
  }
  ctx_.upstream_latency = elapsed;
  countResponse(st.status);
  const auto& statuses = cfg_.retries.on_statuses;
  if (!last && replayable_ && !body_consumed_ && isIdempotent(req_.method) &&
      std::find(statuses.begin(), statuses.end(), st.status) != statuses.end()) {
    co_await finish();
    co_return AttemptOutcome{Failure::RetryStatus, {}};
  }
  if (!body_consumed_ && replayable_) {
    reportRequestBody();
    in_.consume(body_in_buffer_);
    body_consumed_ = true;
  }
  takeH2Head(st);
  if (hooks_.response_head && hooks_.response_head()) co_await hooks_.response_head_async();
  ClientSink sink;
  H2BodySource body(*h2, id, st, h2_held_);
  ExchangeResult r = settle(sink, co_await relayToStream(clientSink(sink), body));
  co_await finish();
  if (r.status == 0) co_return AttemptOutcome{Failure::ClientGone, {}};
  co_return AttemptOutcome{Failure::Done, r};
}

Task<void> Exchange::pumpBodyH2(UpstreamH2Connection& h2, std::int32_t id, UpstreamH2Stream& st,
                                H2Pump& pump) {
  http::ChunkedDecoder decoder;
  const bool chunked = req_.framing == http::BodyFraming::Chunked;
  if (replayable_ && !body_consumed_) {
    // All here: sent from the buffer, which keeps it for a replay until the response comes.
    const std::string_view body = bufferedBody();
    if (chunked) {
      decoder.feed(body, [&](std::string_view data) { h2.codec.sendData(id, data, false); });
    } else {
      h2.codec.sendData(id, body, false);
    }
    h2.codec.sendData(id, {}, true);
    h2.flush();
  } else {
    body_consumed_ = true;
    std::uint64_t remaining = req_.content_length;
    error_code ec;
    for (;;) {
      // Payload only (an HTTP/2 upstream gets no chunked framing).
      const BodyTake t = takeBufferedBody(
          decoder, remaining, [&](std::string_view data) { h2.codec.sendData(id, data, false); });
      if (t.failure != Failure::None) {
        pump.failure = t.failure;
        break;
      }
      const std::size_t take = t.take;
      const bool done = t.done;
      in_.consume(take);
      if (done) {
        h2.codec.sendData(id, {}, true);
        h2.flush();
        break;
      }
      h2.flush();
      // The upstream's flow-control window is the backpressure on the client.
      while (h2.codec.pendingBytes(id) > kH2BodyHighWater && !st.closed)
        co_await st.signal.async_wait(asio::redirect_error(kUseAwaitable, ec));
      if (st.closed) break;
      auto space = asio::buffer(in_.writePtr(), in_.writable());
      std::size_t n = co_await io_.readClient(space, ec);
      if (ec || n == 0) {
        if (!st.closed) pump.failure = Failure::ClientGone;
        break;
      }
      in_.commit(n);
    }
  }
  pump.done = true;
  pump.finished.wake();
  st.wake();  // the exchange may be waiting for the response head: let it see a failure
}

void Exchange::takeH2Head(UpstreamH2Stream& st) {
  http::ResponseHead& resp = resp_;
  resp.clear();
  resp.status = st.status;
  resp.headers = std::move(st.fields);
  resp.framing = http::BodyFraming::Chunked;  // length unknown
  if (const std::string* cl = resp.headers.find(http::HeaderId::ContentLength)) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec == std::errc() && p == cl->data() + cl->size()) {
      resp.framing = http::BodyFraming::ContentLength;
      resp.content_length = n;
    }
  }
  if (req_.method == "HEAD" || resp.status == 204 || resp.status == 304 ||
      (st.ended && st.data.empty() && st.trailers.empty())) {
    if (resp.framing != http::BodyFraming::ContentLength) resp.content_length = 0;
    resp.framing = http::BodyFraming::None;
  }
  if (!resp.headers.has("x-request-id")) resp.headers.add("x-request-id", ctx_.request_id);
}

void H2BodySource::next(BodyPieces& p) {
  if (!st_.data.empty()) {
    held_.clear();
    held_.swap(st_.data);  // the reader appends to st.data while this is sent
    p.data.push_back(held_);
    return;
  }
  held_.clear();
  if (st_.ended) {
    p.end = true;
    if (!st_.trailers.empty()) p.trailers = &st_.trailers;
    return;
  }
  p.failed = st_.closed;  // reset before its end
}

Task<void> H2BodySource::wait(error_code& ec) {
  return st_.signal.async_wait(asio::redirect_error(kUseAwaitable, ec));
}

void H2BodySource::release() {
  if (held_.empty()) return;
  h2_.codec.consume(id_, held_.size());
  h2_.flush();
}

}  // namespace portico::proxy::detail
