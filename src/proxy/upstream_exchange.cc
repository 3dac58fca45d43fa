#include "proxy/upstream_exchange.h"

#include <sys/socket.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "http/codec/chunked_decoder.h"
#include "proxy/http1_response_stream.h"
#include "proxy/message_writer.h"
#include "proxy/upstream_h2.h"

namespace portico::proxy {
namespace {

using boost::system::error_code;

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

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

enum class Failure {
  None,
  Connect,         // could not connect: nothing sent, always retryable
  ConnectTimeout,  // same, by timeout
  Reset,           // upstream closed or reset before a response head
  ReadTimeout,     // no response byte within the read timeout
  TotalTimeout,
  BadResponse,   // malformed response head
  RetryStatus,   // a status listed in retries.on_statuses (response discarded)
  ClientGone,    // the client closed or failed while we sent it or read its body
  BodyTooLarge,  // chunked request body over max_body_bytes
  BadBody,       // invalid chunked framing from the client
  Done,          // response relayed (maybe cut short): `result` says how
};

struct AttemptOutcome {
  Failure failure = Failure::None;
  ExchangeResult result;
};

class Exchange {
 public:
  Exchange(SessionIo& io, const server::Upstream& up, http::RequestHead& req,
           std::string_view target, api::RequestContext& ctx, const ExchangeHooks& hooks,
           ExchangeScratch& scratch)
      : io_(io),
        w_(io.worker()),
        up_(up),
        cfg_(*up.cfg),
        req_(req),
        target_(target),
        ctx_(ctx),
        hooks_(hooks),
        in_(io.clientBuffer()),
        head_(scratch.head),
        out_(scratch.out),
        resp_(scratch.response),
        spans_(scratch.spans),
        joined_(scratch.joined),
        tried_(scratch.tried) {
    // The worker's table matches the snapshot it serves; after a reload mid-request, look up.
    const auto& table = w_.upstream_stats;
    stats_ = up.index < table.size() && w_.snapshot->upstreams.size() > up.index &&
                     w_.snapshot->upstreams[up.index].cfg->name == cfg_.name
                 ? table[up.index]
                 : &w_.stats.upstream(cfg_.name);
  }

  Task<ExchangeResult> run();

 private:
  void measureBufferedBody();
  std::uint64_t hashKey() const;
  Task<AttemptOutcome> attempt(const server::UpstreamTarget& target, bool last);
  Task<Failure> connect(UpstreamConnection& conn, const server::UpstreamTarget& target);
  std::string poolKey(const server::UpstreamTarget& target) const;
  // Sends a request whose body streams from the client (the replayable case is inline).
  Task<Failure> sendRequest(UpstreamConnection& conn);
  Task<Failure> streamRequestBody(UpstreamConnection& conn);
  Task<ExchangeResult> relayResponse(std::unique_ptr<UpstreamConnection> conn);
  // The same for an HTTP/2 client: payload bytes (de-chunked) and trailers go to its stream.
  Task<ExchangeResult> relayResponseToStream(ResponseStream& h2,
                                             std::unique_ptr<UpstreamConnection> conn);
  // After a response body ended well: the connection goes back to the pool if it can.
  void recycle(std::unique_ptr<UpstreamConnection> conn);
  // After a 101: bytes both ways until either side closes, idles or runs out of time.
  Task<ExchangeResult> tunnel(std::unique_ptr<UpstreamConnection> conn);
  Task<void> pumpUpstreamToClient(UpstreamConnection& conn, bool& done, Timer& finished);
  // The same for a WebSocket over an HTTP/2 stream (RFC 8441): the 101 becomes a 200 and the
  // stream's DATA carries the bytes.
  Task<ExchangeResult> tunnelStream(ResponseStream& out, std::unique_ptr<UpstreamConnection> conn);
  Task<void> pumpUpstreamToStream(ResponseStream& out, UpstreamConnection& conn, bool& done,
                                  Timer& finished);
  void reportRequestBody();

  // HTTP/2 upstreams: the request on a stream of a shared connection; its body is pumped from
  // the client while the response comes back (gRPC streams go both ways at once).
  Task<AttemptOutcome> attemptH2(const server::UpstreamTarget& target, bool last);
  struct H2Pump {
    explicit H2Pump(asio::io_context& io) : finished(io.get_executor(), Clock::time_point::max()) {}
    bool done = false;
    Failure failure = Failure::None;
    Timer finished;
  };
  Task<void> pumpBodyH2(UpstreamH2Connection& h2, std::int32_t id, UpstreamH2Stream& st,
                        H2Pump& pump);
  Task<ExchangeResult> relayH2Response(UpstreamH2Connection& h2, std::int32_t id,
                                       UpstreamH2Stream& st);

  SessionIo& io_;
  WorkerContext& w_;
  const server::Upstream& up_;
  const config::UpstreamConfig& cfg_;
  http::RequestHead& req_;
  std::string_view target_;
  api::RequestContext& ctx_;
  const ExchangeHooks& hooks_;
  IoBuffer& in_;
  observability::UpstreamStats* stats_;

  std::string& head_;  // upstream request head, built once
  std::string& out_;
  http::ResponseHead& resp_;
  std::vector<asio::const_buffer>& spans_;
  std::string& joined_;
  upstream::Excluded& tried_;
  std::vector<asio::const_buffer> rest_;  // what writeNow could not send at once
  ForwardInfo info_;
  http::HeaderList h2_fields_;
  std::string h2_relay_;     // response bytes taken from an HTTP/2 upstream stream
  bool replayable_ = false;  // the whole body is in the client buffer
  std::size_t body_in_buffer_ = 0;
  bool body_consumed_ = false;  // the body left the client buffer (streamed or committed)
  bool continue_sent_ = false;
  bool bad_body_ = false;
  bool too_large_ = false;
};

void Exchange::measureBufferedBody() {
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
  upstream::LoadBalancer& lb = w_.balancer(up_);
  const std::uint64_t key = hashKey();
  upstream::Excluded& tried = tried_;
  tried.assign(up_.targets.size(), 0);
  // No targets: no attempt; the answer goes through the same body handling as any failure.
  const int attempts = up_.targets.empty() ? 0 : static_cast<int>(cfg_.retries.attempts);
  ExchangeResult failure{false, true, 503, "no upstream targets"};

  for (int n = 0; n < attempts; ++n) {
    if (n > 0) {
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
    int idx = lb.pick(key, tried);
    if (idx < 0) {  // every target tried: go round again
      std::fill(tried.begin(), tried.end(), 0);
      idx = lb.pick(key, tried);
    }
    if (idx < 0) {
      failure = {false, true, 503, "no upstream target available"};
      break;
    }
    tried[static_cast<std::size_t>(idx)] = 1;
    const auto& target = up_.targets[static_cast<std::size_t>(idx)];
    if (!hooks_.preserve_host) {  // the head names the target: written per attempt
      info.host = target.configured;
      head_.clear();
      if (!http2) writeUpstreamRequestHead(head_, req_, target_, info);
    }
    ctx_.upstream_target = target.address.text;
    ++ctx_.upstream_attempts;
    lb.onStart(idx);
    AttemptOutcome a;
    if (http2) {
      a = co_await attemptH2(target, n + 1 == attempts);
    } else {
      a = co_await attempt(target, n + 1 == attempts);
    }
    lb.onFinish(idx);
    io_.setUpstreamSocket(nullptr);
    io_.setUpstreamSignal(nullptr);

    const bool can_replay = replayable_ && !body_consumed_;
    switch (a.failure) {
      case Failure::Done:
        io_.setTotalDeadline({});
        co_return a.result;
      case Failure::ClientGone:
        io_.setTotalDeadline({});
        co_return ExchangeResult{false, false, 0, "client closed"};
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

std::string Exchange::poolKey(const server::UpstreamTarget& target) const {
  // TLS connections are only reused for the upstream (and so the TLS settings) they were made
  // for; plain ones by address.
  if (!up_.tls) return target.address.text;
  return "tls|" + cfg_.name + "|" + target.address.text;
}

Task<Failure> Exchange::connect(UpstreamConnection& conn, const server::UpstreamTarget& target) {
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
      co_await conn.tls->async_handshake(asio::ssl::stream_base::client,
                                         asio::redirect_error(kUseAwaitable, ec));
    }
    timed_out = io_.opTimedOut();
  }
  io_.disarmOp();
  if (io_.totalExpired()) co_return Failure::TotalTimeout;
  if (ec) co_return timed_out ? Failure::ConnectTimeout : Failure::Connect;
  conn.socket.set_option(tcp::no_delay(true), ec);
  conn.socket.non_blocking(true, ec);  // for writeNow
  co_return Failure::None;
}

Task<AttemptOutcome> Exchange::attempt(const server::UpstreamTarget& target, bool last) {
  const auto started = Clock::now();
  stats_->attempts.add();
  const std::string key = poolKey(target);
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
      std::array<asio::const_buffer, 2> buffers{
          asio::buffer(head_), asio::buffer(in_.readable().data(), body_in_buffer_)};
      error_code write_ec;
      io_.armOp(cfg_.timeouts.read);
      if (conn->tls) {
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
      std::size_t n = co_await readSome(conn->socket, conn->tlsStream(),
                                        asio::buffer(buf.writePtr(), buf.writable()), ec);
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
    const auto elapsed = Clock::now() - started;
    stats_->duration.observe(elapsed);
    if (got != Failure::None) co_return AttemptOutcome{got, {}};
    ctx_.upstream_latency = elapsed;

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
    } else if (ResponseStream* h2 = io_.responseStream()) {
      r = co_await relayResponseToStream(*h2, std::move(conn));
    } else {
      r = co_await relayResponse(std::move(conn));
    }
    if (r.status == 0) co_return AttemptOutcome{Failure::ClientGone, {}};
    co_return AttemptOutcome{Failure::Done, r};
  }
}

void Exchange::reportRequestBody() {
  if (body_in_buffer_ == 0) return;
  std::string_view body = in_.readable().substr(0, body_in_buffer_);
  if (req_.framing == http::BodyFraming::Chunked) {
    http::ChunkedDecoder decoder;
    decoder.feed(body, [&](std::string_view data) {
      ctx_.bytes_received += data.size();
      if (hooks_.request_body) hooks_.request_body(data);
    });
  } else {
    ctx_.bytes_received += body.size();
    if (hooks_.request_body) hooks_.request_body(body);
  }
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
  const bool chunked = req_.framing == http::BodyFraming::Chunked;
  for (;;) {
    // Forward what the client buffer holds of the body.
    std::string_view avail = in_.readable();
    std::size_t take = 0;
    bool done = false;
    if (chunked) {
      auto step = decoder.feed(avail, [&](std::string_view data) {
        ctx_.bytes_received += data.size();
        if (hooks_.request_body) hooks_.request_body(data);
      });
      if (step.status == http::ChunkedDecoder::Status::Error) co_return Failure::BadBody;
      if (decoder.payloadBytes() > io_.limits().max_body_bytes) co_return Failure::BodyTooLarge;
      take = step.consumed;
      done = step.status == http::ChunkedDecoder::Status::Done;
    } else {
      take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, avail.size()));
      remaining -= take;
      done = remaining == 0;
      ctx_.bytes_received += take;
      if (hooks_.request_body && take) hooks_.request_body(avail.substr(0, take));
    }
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

Task<ExchangeResult> Exchange::relayResponse(std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  if (!resp.headers.has("x-request-id")) resp.headers.add("X-Request-Id", ctx_.request_id);
  if (hooks_.response_head) hooks_.response_head();
  const bool to_http10 = req_.version_minor == 0;
  ResponseFraming framing;
  framing.client_version_minor = req_.version_minor;
  framing.chunked = resp.framing == http::BodyFraming::Chunked && !to_http10;
  framing.until_close = resp.framing == http::BodyFraming::UntilClose ||
                        (resp.framing == http::BodyFraming::Chunked && to_http10);
  framing.keep_alive = req_.keep_alive && !framing.until_close && !w_.draining;
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
        if (hooks_.response_body && take) hooks_.response_body(avail.substr(0, take));
        break;
      case http::BodyFraming::Chunked: {
        const std::size_t first_span = spans.size();
        auto step = decoder.feed(avail, [&](std::string_view data) {
          if (to_http10) spans.push_back(asio::buffer(data.data(), data.size()));
          if (hooks_.response_body) hooks_.response_body(data);
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
        if (hooks_.response_body && take) hooks_.response_body(avail);
        break;
    }
    if (!spans.empty()) {
      io_.armOp(io_.limits().idle_timeout);
      if (io_.clientTls()) {
        ctx_.bytes_sent += co_await writeJoined(io_.client(), io_.clientTls(), spans, joined_, ec);
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
    std::size_t n = co_await readSome(conn->socket, conn->tlsStream(),
                                      asio::buffer(buf.writePtr(), buf.writable()), ec);
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

void Exchange::recycle(std::unique_ptr<UpstreamConnection> conn) {
  if (conn->tls && conn->requests == 1) {  // once per connection: its session is resumable
    if (SSL_SESSION* session = SSL_get1_session(conn->tls->native_handle()))
      w_.tls_sessions[conn->target].reset(session);
  }
  const http::ResponseHead& resp = resp_;
  if (resp.keep_alive && resp.framing != http::BodyFraming::UntilClose && conn->buffer.empty() &&
      !w_.draining) {
    w_.pool.release(std::move(conn), cfg_.pool, Clock::now());
  }
}

Task<ExchangeResult> Exchange::relayResponseToStream(ResponseStream& h2,
                                                     std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  if (!resp.headers.has("x-request-id")) resp.headers.add("X-Request-Id", ctx_.request_id);
  if (hooks_.response_head) hooks_.response_head();
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
      if (hooks_.response_body && !data.empty()) hooks_.response_body(data);
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

Task<AttemptOutcome> Exchange::attemptH2(const server::UpstreamTarget& target, bool last) {
  const auto started = Clock::now();
  stats_->attempts.add();
  if (!w_.h2_pool) w_.h2_pool = std::make_shared<UpstreamH2Pool>();
  const std::string key = "h2|" + poolKey(target);
  std::shared_ptr<UpstreamH2Connection> h2 = w_.h2_pool->find(key);
  if (!h2) {
    auto conn = std::make_unique<UpstreamConnection>(w_.io);
    conn->target = key;
    Failure f = co_await connect(*conn, target);
    io_.setUpstreamSocket(nullptr);  // shared from now on: never cancelled for one request
    if (f != Failure::None) co_return AttemptOutcome{f, {}};
    if (conn->tls && !negotiatedH2(*conn)) co_return AttemptOutcome{Failure::Connect, {}};
    h2 = std::make_shared<UpstreamH2Connection>(w_, std::move(conn));
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
  const auto elapsed = Clock::now() - started;
  stats_->duration.observe(elapsed);
  if (got != Failure::None) {
    co_await finish();
    co_return AttemptOutcome{got, {}};
  }
  ctx_.upstream_latency = elapsed;
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
  ExchangeResult r = co_await relayH2Response(*h2, id, st);
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
    std::string_view body = in_.readable().substr(0, body_in_buffer_);
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
      std::string_view avail = in_.readable();
      std::size_t take = 0;
      bool done = false;
      if (chunked) {
        auto step = decoder.feed(avail, [&](std::string_view data) {
          ctx_.bytes_received += data.size();
          if (hooks_.request_body) hooks_.request_body(data);
          h2.codec.sendData(id, data, false);
        });
        if (step.status == http::ChunkedDecoder::Status::Error) {
          pump.failure = Failure::BadBody;
          break;
        }
        if (decoder.payloadBytes() > io_.limits().max_body_bytes) {
          pump.failure = Failure::BodyTooLarge;
          break;
        }
        take = step.consumed;
        done = step.status == http::ChunkedDecoder::Status::Done;
      } else {
        take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, avail.size()));
        remaining -= take;
        done = remaining == 0;
        ctx_.bytes_received += take;
        if (hooks_.request_body && take) hooks_.request_body(avail.substr(0, take));
        h2.codec.sendData(id, avail.substr(0, take), false);
      }
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
  pump.finished.cancel();
  st.wake();  // the exchange may be waiting for the response head: let it see a failure
}

Task<ExchangeResult> Exchange::relayH2Response(UpstreamH2Connection& h2, std::int32_t id,
                                               UpstreamH2Stream& st) {
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
  if (hooks_.response_head) hooks_.response_head();

  std::optional<Http1ResponseStream> h1;
  ResponseStream* out = io_.responseStream();
  if (!out) out = &h1.emplace(io_, req_, out_, joined_);
  auto keep = [&] { return h1 ? h1->keepAlive() : true; };
  ExchangeResult gone{true, false, resp.status, "client closed"};

  const bool no_body = resp.framing == http::BodyFraming::None;
  const bool head_sent = co_await out->sendHead(resp, no_body);
  if (!head_sent) co_return gone;
  if (no_body) co_return ExchangeResult{true, keep(), resp.status, ""};
  error_code ec;
  for (;;) {
    if (!st.data.empty()) {
      h2_relay_.clear();
      h2_relay_.swap(st.data);  // the reader appends to st.data while this is sent
      if (hooks_.response_body) hooks_.response_body(h2_relay_);
      ctx_.bytes_sent += h2_relay_.size();
      const bool sent = co_await out->sendData(h2_relay_, false);
      if (!sent) co_return gone;
      h2.codec.consume(id, h2_relay_.size());  // the upstream may send as much again
      h2.flush();
      continue;
    }
    if (st.ended) {
      bool sent = false;
      if (!st.trailers.empty()) {
        sent = co_await out->sendTrailers(st.trailers);
      } else {
        sent = co_await out->sendData({}, true);
      }
      if (!sent) co_return gone;
      co_return ExchangeResult{true, keep(), resp.status, ""};
    }
    if (st.closed) break;  // reset before its end
    io_.armOp(cfg_.timeouts.read);
    co_await st.signal.async_wait(asio::redirect_error(kUseAwaitable, ec));
    const bool expired = io_.opTimedOut() || io_.totalExpired();
    io_.disarmOp();
    if (expired) break;
  }
  // Cut short: the client must not take it as complete.
  stats_->failures.add();
  co_return ExchangeResult{true, false, resp.status, "upstream response cut short"};
}

Task<void> Exchange::pumpUpstreamToClient(UpstreamConnection& conn, bool& done, Timer& finished) {
  IoBuffer& buf = conn.buffer;
  error_code ec;
  for (;;) {
    std::size_t n = co_await readSome(conn.socket, conn.tlsStream(),
                                      asio::buffer(buf.writePtr(), buf.writable()), ec);
    if (ec || n == 0) break;
    io_.armOp(hooks_.tunnel.idle);
    co_await writeAll(io_.client(), io_.clientTls(), asio::buffer(buf.writePtr(), n), ec);
    if (ec) break;
    ctx_.bytes_sent += n;
    io_.armOp(hooks_.tunnel.idle);
  }
  done = true;
  io_.client().cancel(ec);  // ends the other direction
  finished.cancel();
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
  if (hooks_.response_head) hooks_.response_head();
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

Task<ExchangeResult> Exchange::tunnel(std::unique_ptr<UpstreamConnection> conn) {
  http::ResponseHead& resp = resp_;
  if (hooks_.response_head) hooks_.response_head();
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
  Timer finished(w_.io.get_executor(), Clock::time_point::max());
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
    n = co_await readSome(io_.client(), io_.clientTls(), space, ec);
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

}  // namespace

Task<ExchangeResult> exchangeWithUpstream(SessionIo& io, const server::Upstream& upstream,
                                          http::RequestHead& req, std::string_view target,
                                          api::RequestContext& ctx, const ExchangeHooks& hooks,
                                          ExchangeScratch& scratch) {
  Exchange exchange(io, upstream, req, target, ctx, hooks, scratch);
  co_return co_await exchange.run();
}

}  // namespace portico::proxy
