#pragma once
// The Exchange class that carries one request to an upstream and its response back. Its users
// (the request pipeline, upstream calls) keep it in their own coroutine frame and await run():
// no frame of a wrapper per request. Its code, split by responsibility:
//   upstream_exchange.cc     target choice, retries, HTTP/1 upstreams (connect, send)
//   exchange_h1_relay.cc     HTTP/1 upstream responses to the client (raw, or through a stream)
//   exchange_to_stream.cc    the stream relay, and WebSocket tunnels to HTTP/2 clients
//   exchange_h2_upstream.cc  HTTP/2 upstreams (multiplexed streams, body pump, relay)
//   exchange_tunnel.cc       WebSocket tunnels between HTTP/1 peers
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <optional>

#include "http/codec/chunked_decoder.h"
#include "proxy/body_transforms.h"
#include "proxy/http1_response_stream.h"
#include "proxy/message_writer.h"
#include "proxy/upstream_exchange.h"
#include "proxy/wake_event.h"

namespace portico::proxy {

class UpstreamH2Connection;
struct UpstreamH2Stream;

namespace detail {

using boost::system::error_code;

inline bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
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
  Overloaded,    // circuit breaker: no new connection allowed (max_connections, max_pending)
};

struct AttemptOutcome {
  Failure failure = Failure::None;
  ExchangeResult result;
};

// What a stream relay takes from its source each time round: the body pieces ready now, and
// whether the body ended after them (with trailers) or broke.
struct BodyPieces {
  std::vector<std::string_view>& data;
  bool end = false;
  const http::HeaderList* trailers = nullptr;  // with end, when the upstream sent trailers
  bool failed = false;                         // framing broken, reset, or cut short
};

// A response body as it arrives (the relay's source): next() says what is there without
// waiting, release() lets go of what was just sent, wait() is the one I/O operation that brings
// more (its awaitable directly: no coroutine frame), arrived() takes its outcome.
//
// An HTTP/1 upstream connection: the body decoded from its framing (Content-Length, chunked
// with trailers, or until close).
class H1BodySource {
 public:
  H1BodySource(UpstreamConnection& conn, const http::ResponseHead& resp)
      : conn_(conn), resp_(resp), remaining_(resp.content_length) {
    decoder_.keepTrailers(true);
  }
  void next(BodyPieces& p);
  void release() { conn_.buffer.consume(take_); }
  Task<std::size_t> wait(error_code& ec) {
    return readSome(conn_.socket, conn_.tlsStream(),
                    asio::buffer(conn_.buffer.writePtr(), conn_.buffer.writable()), ec);
  }
  bool arrived(std::size_t n, const error_code& ec, bool expired);
  // The body ended where its framing said: the connection may be pooled again.
  bool complete() const { return complete_; }
  // The body's size when all of it is in the buffer already (0 for none), else nullopt.
  std::optional<std::size_t> bufferedWhole() const {
    if (resp_.framing == http::BodyFraming::None) return 0;
    if (resp_.framing != http::BodyFraming::ContentLength || conn_.buffer.size() < remaining_)
      return std::nullopt;
    return static_cast<std::size_t>(remaining_);
  }

 private:
  UpstreamConnection& conn_;
  const http::ResponseHead& resp_;
  std::uint64_t remaining_;
  http::ChunkedDecoder decoder_;
  std::size_t take_ = 0;
  bool closed_ = false;  // until-close body: the upstream closed, which ends it
  bool complete_ = false;
};

// A stream of a shared HTTP/2 upstream connection: DATA as the connection's reader queued it.
class H2BodySource {
 public:
  H2BodySource(UpstreamH2Connection& h2, std::int32_t id, UpstreamH2Stream& st, std::string& held)
      : h2_(h2), id_(id), st_(st), held_(held) {}
  void next(BodyPieces& p);
  void release();  // gives the flow-control window back: the upstream may send as much again
  Task<void> wait(error_code& ec);  // the stream's signal: DATA, the end, a reset, a deadline
  bool arrived(std::size_t, const error_code&, bool expired) { return !expired; }

 private:
  UpstreamH2Connection& h2_;
  std::int32_t id_;
  UpstreamH2Stream& st_;
  std::string& held_;  // what the relay sends now (the reader appends to the stream meanwhile)
};

class Exchange {
 public:
  Exchange(SessionIo& io, const snapshot::Upstream& up, http::RequestHead& req,
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
        tried_(scratch.tried),
        scratch_transform_error_(scratch.transform_error),
        pieces_(scratch.pieces),
        pool_key_(scratch.pool_key) {
    stats_ = &w_.upstreamStatsOf(up);
  }

  Task<ExchangeResult> run();

 private:
  // Whether requests may go to target `i` now (active checks, passive ejection).
  bool targetAvailable(std::size_t i) const;
  void recordAttemptSpan(std::uint64_t id, Clock::time_point start,
                         const snapshot::UpstreamTarget& target, int attempt,
                         const AttemptOutcome& a);
  // Passive checks: the attempt's outcome counts for or against its target.
  void reportAttempt(std::size_t target, const AttemptOutcome& a);
  // A response head arrived from the upstream (counted by status class).
  void countResponse(int status) {
    const auto cls = static_cast<std::size_t>(status / 100);
    stats_->by_class[cls < stats_->by_class.size() ? cls : 0].add();
  }
  void measureBufferedBody();
  // A fully buffered request body as it goes upstream: from the client buffer (framing as
  // received), or the transformed one.
  std::string_view bufferedBody() const {
    if (hooks_.request_body_replaced) return *hooks_.request_body_replaced;
    return in_.readable().substr(0, body_in_buffer_);
  }
  std::uint64_t hashKey() const;
  Task<AttemptOutcome> attempt(const snapshot::UpstreamTarget& target, bool last);
  Task<Failure> connect(UpstreamConnection& conn, const snapshot::UpstreamTarget& target);
  const char* overload_reason_ = "";
  // The pool's key for connections to `target` after `prefix` (built in the session's scratch
  // unless it is the target's address: no allocation per request).
  const std::string& poolKey(const snapshot::UpstreamTarget& target, std::string_view prefix = {});
  // Sends a request whose body streams from the client (the replayable case is inline).
  Task<Failure> sendRequest(UpstreamConnection& conn);
  Task<Failure> streamRequestBody(UpstreamConnection& conn);
  Task<ExchangeResult> relayResponse(std::unique_ptr<UpstreamConnection> conn);
  // Its common case without a coroutine: a response whole in the buffer (Content-Length or no
  // body), head and body written at once. nullopt, with nothing written, when the response is
  // not whole; with `unsent` set, the client's socket took part of it only and finishRelay()
  // sends the rest (rest_, or joined_ over TLS) before the connection is pooled.
  std::optional<ExchangeResult> relayResponseAtOnce(std::unique_ptr<UpstreamConnection>& conn,
                                                    bool& unsent);
  Task<ExchangeResult> finishRelay(std::unique_ptr<UpstreamConnection> conn, ExchangeResult result);
  // How the response is framed for the client (its HTTP version, keep-alive).
  ResponseFraming clientFraming() const;
  // A response from an HTTP/1 upstream through clientSink().
  Task<ExchangeResult> relayH1ToStream(std::unique_ptr<UpstreamConnection> conn);
  // The same done at once (relayAtOnce) to the client's own stream, without transforms; the
  // connection goes back to the pool. nullopt, with nothing done, when it cannot be.
  std::optional<ExchangeResult> relayH1AtOnce(std::unique_ptr<UpstreamConnection>& conn);
  // Where a response goes when it is not relayed as raw HTTP/1 bytes: the client's HTTP/2
  // stream or an HTTP/1 writer, through the body transforms when filters installed some.
  struct ClientSink {
    std::optional<Http1ResponseStream> h1;
    std::optional<TransformStream> transform;
  };
  bool transforming() const {
    return hooks_.response_transforms && !hooks_.response_transforms->empty();
  }
  ResponseStream& clientSink(ClientSink& sink);
  // The result of a relay through `sink`: HTTP/1 keep-alive, transform failures.
  ExchangeResult settle(const ClientSink& sink, ExchangeResult r);
  // The same for an HTTP/2 client: payload bytes (de-chunked) and trailers go to its stream.
  // The one relay of a response to a ResponseStream (the client's HTTP/2 stream, an HTTP/1
  // writer, a transform, a call's collector), whatever the upstream's protocol: head, then the
  // body as the source has it (BodySource below), then the end or the trailers.
  template <class Source>
  Task<ExchangeResult> relayToStream(ResponseStream& out, Source& src);
  // The same, for a response whose body is whole in the buffer and a stream that takes it
  // without waiting: done at once, without a coroutine frame. nullopt (nothing sent) otherwise.
  std::optional<ExchangeResult> relayAtOnce(ResponseStream& out, H1BodySource& src);
  // After a response body ended well: the connection goes back to the pool if it can.
  void recycle(std::unique_ptr<UpstreamConnection> conn);
  // After a 101: bytes both ways until either side closes, idles or runs out of time.
  Task<ExchangeResult> tunnel(std::unique_ptr<UpstreamConnection> conn);
  Task<void> pumpUpstreamToClient(UpstreamConnection& conn, bool& done, WakeEvent& finished);
  // The same for a WebSocket over an HTTP/2 stream (RFC 8441): the 101 becomes a 200 and the
  // stream's DATA carries the bytes.
  Task<ExchangeResult> tunnelStream(ResponseStream& out, std::unique_ptr<UpstreamConnection> conn);
  Task<void> pumpUpstreamToStream(ResponseStream& out, UpstreamConnection& conn, bool& done,
                                  WakeEvent& finished);
  void reportRequestBody();
  // What the client buffer holds of a streamed request body: how much of it to forward and
  // whether that ends the body. Payload bytes are counted, shown to the body filters and passed
  // to `on_payload` (de-chunked). Failure::None, BadBody or BodyTooLarge.
  struct BodyTake {
    std::size_t take = 0;  // bytes of the buffer (framing included) that belong to the body
    bool done = false;
    Failure failure = Failure::None;
  };
  template <class OnPayload>
  BodyTake takeBufferedBody(http::ChunkedDecoder& decoder, std::uint64_t& remaining,
                            OnPayload&& on_payload) {
    BodyTake t;
    const std::string_view avail = in_.readable();
    auto payload = [&](std::string_view data) {
      ctx_.bytes_received += data.size();
      if (hooks_.request_body && !data.empty()) hooks_.request_body(data, false);
      on_payload(data);
    };
    if (req_.framing == http::BodyFraming::Chunked) {
      auto step = decoder.feed(avail, payload);
      if (step.status == http::ChunkedDecoder::Status::Error) {
        t.failure = Failure::BadBody;
      } else if (decoder.payloadBytes() > io_.limits().max_body_bytes) {
        t.failure = Failure::BodyTooLarge;
      }
      t.take = step.consumed;
      t.done = step.status == http::ChunkedDecoder::Status::Done;
    } else {
      t.take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, avail.size()));
      remaining -= t.take;
      t.done = remaining == 0;
      payload(avail.substr(0, t.take));
    }
    if (t.done && t.failure == Failure::None && hooks_.request_body) hooks_.request_body({}, true);
    return t;
  }

  // HTTP/2 upstreams: the request on a stream of a shared connection; its body is pumped from
  // the client while the response comes back (gRPC streams go both ways at once).
  Task<AttemptOutcome> attemptH2(const snapshot::UpstreamTarget& target, bool last);
  struct H2Pump {
    explicit H2Pump(asio::io_context& io) : finished(io.get_executor()) {}
    bool done = false;
    Failure failure = Failure::None;
    WakeEvent finished;
  };
  Task<void> pumpBodyH2(UpstreamH2Connection& h2, std::int32_t id, UpstreamH2Stream& st,
                        H2Pump& pump);
  // The head of an HTTP/2 upstream's response, as the relay sends it.
  void takeH2Head(UpstreamH2Stream& st);

  SessionIo& io_;
  WorkerContext& w_;
  const snapshot::Upstream& up_;
  const config::UpstreamConfig& cfg_;
  http::RequestHead& req_;
  std::string_view target_;
  api::RequestContext& ctx_;
  // The request's start in steady milliseconds: "now" for health decisions without a clock read.
  std::int64_t now_ms_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.start.time_since_epoch()).count();
  const ExchangeHooks& hooks_;
  IoBuffer& in_;
  observability::UpstreamStats* stats_;

  std::string& head_;  // upstream request head, built once
  std::string& out_;
  http::ResponseHead& resp_;
  std::vector<asio::const_buffer>& spans_;
  std::string h2_held_;  // response bytes taken from an HTTP/2 upstream stream
  std::string& joined_;
  upstream::Excluded& tried_;
  std::string& scratch_transform_error_;
  std::vector<std::string_view>& pieces_;  // the body pieces of one round of a stream relay
  std::string& pool_key_;
  std::vector<asio::const_buffer> rest_;  // what writeNow could not send at once
  ForwardInfo info_;
  http::HeaderList h2_fields_;
  bool replayable_ = false;  // the whole body is in the client buffer
  std::size_t body_in_buffer_ = 0;
  bool body_consumed_ = false;  // the body left the client buffer (streamed or committed)
  bool continue_sent_ = false;
  bool bad_body_ = false;
  bool too_large_ = false;
};

}  // namespace detail
}  // namespace portico::proxy
