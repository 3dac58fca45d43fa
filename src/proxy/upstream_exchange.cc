#include "proxy/upstream_exchange.h"

#include "observability/tracing.h"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/draining_receive.h"
#include "proxy/exchange.h"

namespace portico::proxy {
namespace detail {
namespace {

const char* failureName(Failure f) {
  switch (f) {
    case Failure::Connect:
      return "connect_failed";
    case Failure::ConnectTimeout:
      return "connect_timeout";
    case Failure::Reset:
      return "reset";
    case Failure::ReadTimeout:
      return "read_timeout";
    case Failure::TotalTimeout:
      return "total_timeout";
    case Failure::BadResponse:
      return "bad_response";
    case Failure::RetryStatus:
      return "retry_status";
    case Failure::ClientGone:
      return "client_gone";
    case Failure::Overloaded:
      return "overloaded";
    default:
      return "other";
  }
}

}  // namespace

namespace {

// A pooled connection the upstream has closed reads as EOF at once. Checked before sending a
// request that cannot be replayed (its body streams from the client).
bool looksAlive(Socket& socket) {
  char c;
  ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

tcp::endpoint toEndpoint(const SocketAddress& a) {
  tcp::endpoint ep;
  std::memcpy(ep.data(), &a.storage, a.length);
  ep.resize(a.length);
  return ep;
}

std::string_view cookieValue(const std::string& cookies, std::string_view name) {
  std::string_view rest = cookies;
  while (!rest.empty()) {
    auto semi = rest.find(';');
    std::string_view pair = rest.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return {};
}

}  // namespace

void Exchange::measureBufferedBody() {
  if (hooks_.request_body_replaced) {  // read and transformed already: nothing in the buffer
    replayable_ = true;
    body_in_buffer_ = 0;
    return;
  }
  switch (req_.framing) {
    case http::BodyFraming::None:
      replayable_ = true;
      body_in_buffer_ = 0;
      break;
    case http::BodyFraming::ContentLength:
      replayable_ = in_.size() >= req_.content_length;
      body_in_buffer_ = replayable_ ? req_.content_length : 0;
      break;
    case http::BodyFraming::Chunked: {
      http::ChunkedDecoder decoder;
      auto step = decoder.feed(in_.readable(), [](std::string_view) {});
      replayable_ = step.status == http::ChunkedDecoder::Status::Done &&
                    decoder.payloadBytes() <= io_.limits().max_body_bytes;
      // Refuse framing errors before any upstream is contacted, when they are already here.
      bad_body_ = step.status == http::ChunkedDecoder::Status::Error;
      too_large_ = decoder.payloadBytes() > io_.limits().max_body_bytes;
      body_in_buffer_ = replayable_ ? step.consumed : 0;
      break;
    }
    default:
      replayable_ = false;
  }
}

std::uint64_t Exchange::hashKey() const {
  if (cfg_.balance != config::Balance::ConsistentHash) return 0;
  switch (cfg_.hash.on) {
    case config::HashConfig::On::Header: {
      const std::string* v = req_.headers.find(cfg_.hash.name);
      return upstream::hash64(v ? std::string_view(*v) : std::string_view());
    }
    case config::HashConfig::On::Cookie: {
      const std::string* c = req_.headers.find("cookie");
      return upstream::hash64(c ? cookieValue(*c, cfg_.hash.name) : std::string_view());
    }
    case config::HashConfig::On::Path:
      return upstream::hash64(req_.path);
    case config::HashConfig::On::ClientIp:
      return upstream::hash64(ctx_.client_ip);
  }
  return 0;
}

Task<ExchangeResult> Exchange::run() {
  measureBufferedBody();
  if (bad_body_) co_return ExchangeResult{false, false, 400, "invalid chunked body"};
  if (too_large_) co_return ExchangeResult{false, false, 413, "request body too large"};
  ForwardInfo& info = info_;
  info.client_ip = ctx_.client_ip;
  info.request_id = ctx_.request_id;
  info.proto = ctx_.secure ? "https" : "http";
  head_.clear();
  const bool http2 = cfg_.protocol != config::UpstreamProtocol::Http1;
  if (hooks_.preserve_host && !http2) writeUpstreamRequestHead(head_, req_, target_, info);

  // The tighter of the upstream's total timeout and the client's own deadline.
  Clock::duration total = cfg_.timeouts.total;
  if (hooks_.deadline.count() > 0 && (total.count() <= 0 || hooks_.deadline < total))
    total = hooks_.deadline;
  io_.setTotalDeadline(total);
  upstream::BalancerUse lb(w_.balancer(up_));
  const std::uint64_t key = hashKey();
  upstream::Excluded& tried = tried_;
  // Targets out of service (health checks, ejection) count as tried already.
  auto excludeUnavailable = [&] {
    tried.assign(up_.targets.size(), 0);
    bool any = false;
    for (std::size_t i = 0; i < tried.size(); ++i) {
      tried[i] = !targetAvailable(i);
      any |= !tried[i];
    }
    return any;
  };
  const bool any_available = excludeUnavailable();
  // The circuit breaker decides before anything touches the upstream; it learns how the
  // request went when this function returns, whichever way.
  const config::CircuitBreakerConfig* breaker =
      cfg_.circuit_breaker ? &*cfg_.circuit_breaker : nullptr;
  struct CircuitOutcome {
    upstream::UpstreamState* state = nullptr;
    const config::CircuitBreakerConfig* cb = nullptr;
    const TimeSource* time = nullptr;
    bool failed = true;
    ~CircuitOutcome() {
      if (state) state->finish(cb, failed, time->steadyMs());
    }
  } circuit;
  const char* refused = nullptr;
  // In-flight counts are shared by the workers: kept only for the upstreams that need them
  // (breaker, retry budget, scaling signals), so the others pay no shared write per request.
  const bool tracked = breaker || cfg_.retry_budget || cfg_.scaling;
  bool admitted = true;
  if (tracked) {
    admitted = up_.state->admit(breaker, now_ms_, refused);
    if (admitted) {
      circuit.state = up_.state.get();
      circuit.cb = breaker;
      circuit.time = &w_.time;
    }
  }
  // No targets: no attempt; the answer goes through the same body handling as any failure.
  int attempts = up_.targets.empty() ? 0 : static_cast<int>(cfg_.retries.attempts);
  ExchangeResult failure{false, true, 503, "no upstream targets"};
  if (!admitted) {
    attempts = 0;
    failure.error = refused;
  } else if (attempts > 0 && !any_available) {
    attempts = 0;
    failure.error = "no healthy upstream target";
  }

  bool retrying = false;
  for (int n = 0; n < attempts; ++n) {
    if (retrying) {
      up_.state->endRetry();
      retrying = false;
    }
    if (n > 0) {
      if (tracked &&
          !up_.state->beginRetry(breaker, cfg_.retry_budget ? &*cfg_.retry_budget : nullptr))
        break;  // over max_retries or the retry budget: the last failure stands
      retrying = tracked;
      stats_->retries.add();
      // Jittered exponential backoff: base * 2^(n-1), capped, times a factor in [0.5, 1).
      auto base = cfg_.retries.backoff_base * (1 << std::min(n - 1, 10));
      auto delay = std::min<config::Duration>(base, cfg_.retries.backoff_max);
      delay = config::Duration(
          delay.count() / 2 + static_cast<std::int64_t>(
                                  w_.rng.below(static_cast<std::uint64_t>(delay.count() / 2 + 1))));
      if (delay.count() > 0) {
        Timer timer(w_.io.get_executor(), delay);
        error_code ec;
        co_await timer.async_wait(asio::redirect_error(kUseAwaitable, ec));
      }
      if (io_.totalExpired()) {
        failure = {false, true, 504, "upstream request timeout"};
        break;
      }
    }
    if (io_.abandoned()) break;  // cancelled during the backoff
    int idx = lb->pick(key, tried);
    if (idx < 0 && excludeUnavailable()) idx = lb->pick(key, tried);  // go round again
    if (idx < 0) {
      failure = {false, true, 503, "no healthy upstream target"};
      break;
    }
    tried[static_cast<std::size_t>(idx)] = 1;
    const auto& target = up_.targets[static_cast<std::size_t>(idx)];
    // Traced: each attempt is a client span, and the upstream's parent is that span.
    const bool traced = ctx_.trace.sampled;
    std::uint64_t attempt_span = 0;
    Clock::time_point attempt_start{};
    if (traced) {
      attempt_span = w_.spanId();
      attempt_start = w_.time.steady();
      req_.headers.set("traceparent",
                       observability::formatTraceparent(ctx_.trace, attempt_span, true));
    }
    if (!hooks_.preserve_host || traced) {  // the head changes per attempt: written per attempt
      if (!hooks_.preserve_host) info.host = target.configured;
      head_.clear();
      if (!http2) writeUpstreamRequestHead(head_, req_, target_, info);
    }
    ctx_.upstream_target = target.address.text;
    ++ctx_.upstream_attempts;
    lb->onStart(idx);
    AttemptOutcome a;
    if (http2) {
      a = co_await attemptH2(target, n + 1 == attempts);
    } else {
      a = co_await attempt(target, n + 1 == attempts);
    }
    lb->onFinish(idx);
    io_.setUpstreamSocket(nullptr);
    io_.setUpstreamSignal(nullptr);
    if (io_.abandoned()) {  // cancelled by its owner: no verdict on the upstream, no retry
      if (retrying) up_.state->endRetry();
      io_.setTotalDeadline({});
      circuit.failed = false;
      co_return ExchangeResult{false, false, 0, "cancelled"};
    }
    reportAttempt(static_cast<std::size_t>(idx), a);
    if (traced) recordAttemptSpan(attempt_span, attempt_start, target, n + 1, a);
    if (retrying) {
      up_.state->endRetry();
      retrying = false;
    }

    const bool can_replay = replayable_ && !body_consumed_;
    switch (a.failure) {
      case Failure::Done:
        io_.setTotalDeadline({});
        circuit.failed = a.result.status >= 500 && !a.result.upstream_ok;
        if (circuit.failed) stats_->server_errors.add();
        co_return a.result;
      case Failure::ClientGone:
        io_.setTotalDeadline({});
        circuit.failed = false;
        co_return ExchangeResult{false, false, 0, "client closed"};
      case Failure::Overloaded:
        circuit.failed = false;  // refused by our own limits: says nothing of the upstream
        failure = {false, true, 503, overload_reason_};
        break;
      case Failure::BodyTooLarge:
        io_.setTotalDeadline({});
        co_return ExchangeResult{false, false, 413, "request body too large"};
      case Failure::BadBody:
        io_.setTotalDeadline({});
        co_return ExchangeResult{false, false, 400, "invalid chunked body"};
      case Failure::Connect:
        stats_->failures.add();
        failure = {false, true, 502, "upstream connect failed"};
        continue;
      case Failure::ConnectTimeout:
        stats_->failures.add();
        failure = {false, true, 504, "upstream connect timeout"};
        continue;
      case Failure::Reset:
        stats_->failures.add();
        failure = {false, true, 502, "upstream closed the connection"};
        if (can_replay && isIdempotent(req_.method)) continue;
        break;
      case Failure::RetryStatus:
        continue;
      case Failure::ReadTimeout:
        stats_->failures.add();
        failure = {false, true, 504, "upstream read timeout"};
        break;
      case Failure::TotalTimeout:
        stats_->failures.add();
        failure = {false, true, 504, "upstream request timeout"};
        break;
      case Failure::BadResponse:
        stats_->failures.add();
        failure = {false, true, 502, "invalid response from upstream"};
        break;
      case Failure::None:
        break;
    }
    break;
  }
  io_.setTotalDeadline({});
  // The client connection can only stay open if the request body is fully behind us.
  failure.keep_client = req_.framing == http::BodyFraming::None || (replayable_ && !body_consumed_);
  if (failure.keep_client && body_in_buffer_ > 0) in_.consume(body_in_buffer_);
  co_return failure;
}

const std::string& Exchange::poolKey(const snapshot::UpstreamTarget& target,
                                     std::string_view prefix) {
  // TLS connections are only reused for the upstream (and so the TLS settings) they were made
  // for; plain ones by address.
  if (!up_.tls && prefix.empty()) return target.address.text;
  pool_key_.assign(prefix);
  if (up_.tls) pool_key_.append("tls|").append(cfg_.name).append("|");
  pool_key_.append(target.address.text);
  return pool_key_;
}

void Exchange::recordAttemptSpan(std::uint64_t id, Clock::time_point start,
                                 const snapshot::UpstreamTarget& target, int attempt,
                                 const AttemptOutcome& a) {
  api::Span span;
  span.id = id;
  span.parent = ctx_.trace.span;
  span.kind = 3;
  span.name = "upstream " + cfg_.name;
  auto ns = [&](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(w_.wallTime(t).time_since_epoch())
        .count();
  };
  span.start_ns = ns(start);
  span.end_ns = ns(w_.time.steady());
  span.attr("portico.upstream", cfg_.name);
  span.attr("server.address", target.address.text);
  span.attr("portico.attempt", static_cast<std::int64_t>(attempt));
  if (a.failure == Failure::Done) {
    span.attr("http.response.status_code", static_cast<std::int64_t>(a.result.status));
    span.error = a.result.status >= 500;
  } else {
    span.error = true;
    span.attr("error.type", failureName(a.failure));
  }
  ctx_.trace.children.push_back(std::move(span));
}

bool Exchange::targetAvailable(std::size_t i) const {
  return i >= up_.health.size() || up_.health[i]->available(now_ms_);
}

void Exchange::reportAttempt(std::size_t target, const AttemptOutcome& a) {
  if (!cfg_.outlier_detection || target >= up_.health.size()) return;
  bool failed = false;
  switch (a.failure) {
    case Failure::Connect:
    case Failure::ConnectTimeout:
    case Failure::Reset:
    case Failure::ReadTimeout:
    case Failure::BadResponse:
    case Failure::RetryStatus:
      failed = true;
      break;
    case Failure::Done:
      failed = a.result.status >= 500 && !a.result.upstream_ok;
      break;
    default:
      return;  // the client's doing, or our own limits: no verdict on the target
  }
  auto& health = *up_.health[target];
  if (!failed) {
    health.requestSucceeded(now_ms_, *cfg_.outlier_detection);
  } else if (health.requestFailed(w_.time.steadyMs(), *cfg_.outlier_detection)) {
    stats_->ejections.add();
  }
}

Task<Failure> Exchange::connect(UpstreamConnection& conn, const snapshot::UpstreamTarget& target) {
  const config::CircuitBreakerConfig* breaker =
      cfg_.circuit_breaker ? &*cfg_.circuit_breaker : nullptr;
  if (!up_.state->beginConnect(breaker, overload_reason_)) co_return Failure::Overloaded;
  struct PendingDone {
    upstream::UpstreamState& s;
    ~PendingDone() { s.connectDone(); }
  } pending{*up_.state};
  io_.setUpstreamSocket(&conn.socket);
  io_.armOp(cfg_.timeouts.connect);
  error_code ec;
  co_await conn.socket.async_connect(toEndpoint(target.address),
                                     asio::redirect_error(kUseAwaitable, ec));
  bool timed_out = io_.opTimedOut();
  if (!ec && up_.tls) {
    // The TLS handshake shares the connect timeout.
    conn.tls_context = up_.tls;
    conn.tls.emplace(conn.socket, up_.tls->context());
    SSL* ssl = conn.tls->native_handle();
    if (!up_.tls->prepare(ssl, target.host)) ec = asio::error::invalid_argument;
    if (auto it = w_.tls_sessions.find(conn.target); it != w_.tls_sessions.end())
      SSL_set_session(ssl, it->second.get());
    if (!ec) {
      co_await conn.tls->handshake(false, ec);
    }
    timed_out = io_.opTimedOut();
  }
  io_.disarmOp();
  if (io_.totalExpired()) co_return Failure::TotalTimeout;
  if (ec) co_return timed_out ? Failure::ConnectTimeout : Failure::Connect;
  conn.socket.set_option(tcp::no_delay(true), ec);
  conn.socket.non_blocking(true, ec);  // for writeNow
  enableDrainHint(conn.socket.native_handle());
  conn.counted = up_.state;
  conn.counted->connections().fetch_add(1, std::memory_order_relaxed);
  co_return Failure::None;
}

Task<AttemptOutcome> Exchange::attempt(const snapshot::UpstreamTarget& target, bool last) {
  const auto started = w_.time.steady();
  stats_->attempts.add();
  const std::string& key = poolKey(target);
  std::unique_ptr<UpstreamConnection> conn = w_.pool.acquire(key);
  if (conn && !replayable_ && !looksAlive(conn->socket)) conn.reset();

  // A pooled connection may have been closed by the upstream while idle: if it fails before
  // any response byte, the request goes again once on a fresh connection.
  for (int fresh_tries = 0;; ++fresh_tries) {
    const bool reused = conn != nullptr;
    if (!conn) {
      conn = std::make_unique<UpstreamConnection>(w_.io);
      conn->target = key;
      Failure f = co_await connect(*conn, target);
      if (f != Failure::None) co_return AttemptOutcome{f, {}};
    }
    io_.setUpstreamSocket(&conn->socket);
    ++conn->requests;

    Failure sent = Failure::None;
    if (replayable_ && !body_consumed_) {  // the common case, without another coroutine frame
      std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(bufferedBody())};
      error_code write_ec;
      io_.armOp(cfg_.timeouts.read);
      if (conn->tls) {
        if (!writeJoinedAtOnce(*conn->tlsStream(), buffers, joined_))
          co_await writeJoined(conn->socket, conn->tlsStream(), buffers, joined_, write_ec);
      } else if (writeNow(conn->socket, buffers, rest_, write_ec); !write_ec && !rest_.empty()) {
        co_await writeAll(conn->socket, nullptr, rest_, write_ec);
      }
      io_.disarmOp();
      sent =
          io_.totalExpired() ? Failure::TotalTimeout : (write_ec ? Failure::Reset : Failure::None);
    } else {
      sent = co_await sendRequest(*conn);
    }
    if (sent == Failure::Reset && reused && replayable_ && fresh_tries == 0) {
      conn.reset();
      continue;
    }
    if (sent != Failure::None && sent != Failure::Reset) co_return AttemptOutcome{sent, {}};

    // Read the response head (skipping 1xx interim responses).
    http::ResponseHead& resp = resp_;
    IoBuffer& buf = conn->buffer;
    Failure got = Failure::None;
    bool received_any = false;
    error_code ec;
    for (;;) {
      if (!buf.empty()) {
        auto pr =
            http::parseResponseHead(buf.readable(), io_.limits().head, req_.method == "HEAD", resp);
        if (pr.status == http::ParseStatus::Error) {
          got = Failure::BadResponse;
          break;
        }
        if (pr.status == http::ParseStatus::Complete) {
          if (resp.status == 101) {
            // Switching protocols only for a request that asked for it.
            if (req_.upgrade.empty()) got = Failure::BadResponse;
            buf.consume(pr.consumed);
            break;
          }
          if (resp.status >= 100 && resp.status < 200) {
            buf.consume(pr.consumed);
            continue;
          }
          buf.consume(pr.consumed);
          break;
        }
      }
      if (buf.writable() == 0) {
        if (buf.capacity() >= io_.limits().head.max_header_bytes + 4096) {
          got = Failure::BadResponse;
          break;
        }
        buf.reserve(io_.limits().head.max_header_bytes + 4096);
      }
      io_.armOp(cfg_.timeouts.read);
      const asio::mutable_buffer space(buf.writePtr(), buf.writable());
      // Not a conditional expression with a co_await in each arm: GCC 12 runs both arms'
      // coroutines when such an expression is an operand of a call (an assignment to an
      // std::optional, found in session 25). Portico writes none.
      std::size_t n = 0;
      if (received_any)
        n = co_await readMore(conn->socket, conn->tlsStream(), space, conn->read_unsure, ec);
      else
        n = co_await readAnswerStart(conn->socket, conn->tlsStream(), space, conn->read_unsure, ec);
      const bool timed_out = io_.opTimedOut();
      io_.disarmOp();
      if (io_.totalExpired()) {
        got = Failure::TotalTimeout;
        break;
      }
      if (ec || n == 0) {
        got = timed_out ? Failure::ReadTimeout : Failure::Reset;
        break;
      }
      received_any = true;
      buf.commit(n);
    }
    if (got == Failure::Reset && reused && !received_any && replayable_ && !body_consumed_ &&
        fresh_tries == 0) {
      conn.reset();
      continue;  // stale pooled connection: replay on a fresh one
    }
    if (got == Failure::None && sent == Failure::Reset) got = Failure::None;  // it answered early
    const auto elapsed = w_.time.steady() - started;
    stats_->duration.observe(elapsed);
    if (got != Failure::None) co_return AttemptOutcome{got, {}};
    ctx_.upstream_latency = elapsed;
    countResponse(resp.status);

    const auto& statuses = cfg_.retries.on_statuses;
    if (!last && replayable_ && !body_consumed_ && isIdempotent(req_.method) &&
        std::find(statuses.begin(), statuses.end(), resp.status) != statuses.end()) {
      co_return AttemptOutcome{Failure::RetryStatus, {}};
    }
    if (!body_consumed_) {
      reportRequestBody();
      in_.consume(body_in_buffer_);
      body_consumed_ = true;
    }
    ExchangeResult r;
    if (resp.status == 101 && io_.responseStream()) {
      r = co_await tunnelStream(*io_.responseStream(), std::move(conn));
    } else if (resp.status == 101) {
      r = co_await tunnel(std::move(conn));
    } else {
      if (!resp.headers.has("x-request-id")) resp.headers.add("X-Request-Id", ctx_.request_id);
      if (hooks_.response_head && hooks_.response_head()) co_await hooks_.response_head_async();
      if (io_.responseStream() || transforming()) {
        // Payload through a stream writer (HTTP/2 client, transforms); else raw HTTP/1 bytes.
        if (auto at_once = relayH1AtOnce(conn))
          r = *at_once;
        else
          r = co_await relayH1ToStream(std::move(conn));
      } else {
        bool unsent = false;
        if (auto at_once = relayResponseAtOnce(conn, unsent); !at_once)
          r = co_await relayResponse(std::move(conn));
        else if (unsent)
          r = co_await finishRelay(std::move(conn), *at_once);
        else
          r = *at_once;
      }
    }
    if (r.status == 0) co_return AttemptOutcome{Failure::ClientGone, {}};
    co_return AttemptOutcome{Failure::Done, r};
  }
}

void Exchange::reportRequestBody() {
  const std::string_view body = bufferedBody();
  if (body.empty()) return;
  if (req_.framing == http::BodyFraming::Chunked) {
    http::ChunkedDecoder decoder;
    decoder.feed(body, [&](std::string_view data) {
      ctx_.bytes_received += data.size();
      if (hooks_.request_body && !data.empty()) hooks_.request_body(data, false);
    });
  } else {
    ctx_.bytes_received += body.size();
    if (hooks_.request_body) hooks_.request_body(body, false);
  }
  if (hooks_.request_body) hooks_.request_body({}, true);
}

Task<Failure> Exchange::sendRequest(UpstreamConnection& conn) {
  if (body_consumed_) co_return Failure::Reset;  // a streamed body cannot be sent twice
  if (req_.expect_continue && !continue_sent_) {
    continue_sent_ = true;
    const bool sent = co_await io_.sendContinue();
    if (!sent) co_return Failure::ClientGone;
  }
  co_return co_await streamRequestBody(conn);
}

Task<Failure> Exchange::streamRequestBody(UpstreamConnection& conn) {
  body_consumed_ = true;
  error_code ec;
  bool head_sent = false;
  std::uint64_t remaining = req_.content_length;
  http::ChunkedDecoder decoder;
  for (;;) {
    // Forward what the client buffer holds of the body, framing as received.
    const std::string_view avail = in_.readable();
    const BodyTake t = takeBufferedBody(decoder, remaining, [](std::string_view) {});
    if (t.failure != Failure::None) co_return t.failure;
    const std::size_t take = t.take;
    const bool done = t.done;
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head_sent ? std::string_view() : std::string_view(head_)),
        asio::buffer(avail.data(), take)};
    head_sent = true;
    io_.armOp(cfg_.timeouts.read);
    co_await writeAll(conn.socket, conn.tlsStream(), buffers, ec);
    io_.disarmOp();
    in_.consume(take);
    if (io_.totalExpired()) co_return Failure::TotalTimeout;
    if (ec) co_return Failure::Reset;  // the upstream may still have answered: read it
    if (done) co_return Failure::None;
    io_.armOp(io_.limits().idle_timeout);
    auto space = asio::buffer(in_.writePtr(), in_.writable());
    std::size_t n = 0;
    n = co_await io_.readClient(space, ec);
    io_.disarmOp();
    if (ec || n == 0) co_return Failure::ClientGone;
    in_.commit(n);
  }
}

}  // namespace detail

}  // namespace portico::proxy
