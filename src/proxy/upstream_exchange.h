#pragma once
// One request's trip to an upstream and back: target choice, pooled or fresh connection,
// request head and body out, response head in, response streamed to the client. Retries,
// stale-connection replays and timeouts live here.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include "api/request_context.h"
#include "http/codec/head_parser.h"
#include "proxy/worker_context.h"

namespace portico::proxy {

class WakeEvent;

struct RequestLimits {
  http::HeadLimits head;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
  config::Duration idle_timeout{60000};
};

// A response as head, body pieces and trailers: an HTTP/2 stream's response side, or an HTTP/1
// response framed as it goes (chunked when the length is unknown). The exchange relays
// responses that are not plain HTTP/1-to-HTTP/1 through it.
class ResponseStream {
 public:
  // Status and fields as relayed (hop-by-hop ones are dropped here). False: client gone.
  virtual Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) = 0;
  // Sends body bytes; waits while the client (its flow-control window) holds them back.
  virtual Task<bool> sendData(std::string_view data, bool end_stream) = 0;
  virtual Task<bool> sendTrailers(const http::HeaderList& trailers) = 0;  // ends the response
  // sendHead and sendData done at once, where they need not wait (an HTTP/2 stream queues into
  // its codec): their result, or nullopt when the caller must co_await them (the default).
  // The common path then costs no coroutine frame per call.
  virtual std::optional<bool> sendHeadNow(const http::ResponseHead&, bool) { return std::nullopt; }
  virtual std::optional<bool> sendDataNow(std::string_view, bool) { return std::nullopt; }
  // Whether a head and `body_bytes` of body would all go at once (sendHeadNow, then
  // sendDataNow for each piece): a response already whole in the upstream's buffer then
  // relays without a coroutine (Exchange::relayAtOnce).
  virtual bool sendsAtOnce(std::size_t /*body_bytes*/) const { return false; }

 protected:
  ~ResponseStream() = default;
};

// What the exchange needs from the client side of a request: its buffer and reads, its
// deadlines (enforced by the worker's sweeper, which cancels the pending operation), and how
// responses leave (HTTP/1 bytes on the socket, or an HTTP/2 stream).
class SessionIo {
 public:
  virtual WorkerContext& worker() = 0;
  virtual Socket& client() = 0;        // HTTP/1: the TCP socket, TLS or not
  virtual TlsStream* clientTls() = 0;  // HTTP/1: the TLS stream on it, or nullptr
  virtual ResponseStream* responseStream() {
    return nullptr;
  }  // HTTP/2: the stream's response side
  // The request body as received so far (HTTP/1: the connection's buffer, which also holds
  // what follows the request).
  virtual IoBuffer& clientBuffer() = 0;
  // Reads more of the request body into `space`; 0 bytes with `ec` set at its end or failure.
  virtual Task<std::size_t> readClient(asio::mutable_buffer space,
                                       boost::system::error_code& ec) = 0;
  // Answers "Expect: 100-continue"; false when the client is gone.
  virtual Task<bool> sendContinue() = 0;
  virtual void armOp(Clock::duration d) = 0;  // the next operations must end within d
  virtual void disarmOp() = 0;
  virtual bool opTimedOut() const = 0;
  virtual bool totalExpired() const = 0;
  virtual void setTotalDeadline(Clock::duration d) = 0;  // 0 = none
  virtual void setUpstreamSocket(Socket* s) = 0;         // cancelled too on a deadline
  virtual void setUpstreamSignal(WakeEvent* e) = 0;      // woken too (HTTP/2 upstream streams)
  // Ends a pending readClient() (with an error); the request body is no longer wanted.
  virtual void cancelRead() = 0;
  virtual const RequestLimits& limits() const = 0;
  // Nobody wants the answer any more (an upstream call cancelled): the exchange stops after
  // the current attempt, without a retry or a verdict on the upstream.
  virtual bool abandoned() const { return false; }

 protected:
  ~SessionIo() = default;
};

struct TunnelLimits {
  Clock::duration idle{};          // no byte in either direction for this long ends it
  Clock::duration max_duration{};  // 0 = none
};

struct ExchangeHooks {
  // Response filters, on scratch.response, before any of the response leaves. Returns true when
  // a filter went asynchronous: the exchange then awaits response_head_async() (the rest of
  // the response phase) before it relays anything.
  std::function<bool()> response_head;
  std::function<Task<void>()> response_head_async;
  // Request body payload as it is forwarded, then once with end = true. May be empty.
  std::function<void(std::string_view, bool)> request_body;
  // The request body as transformed by the request filters' body transforms (null: the body
  // as received). Sent with Content-Length; req.framing says so.
  const std::string* request_body_replaced = nullptr;
  // Response body transforms installed by the response filters (null or empty: none): the
  // body goes through them on its way to the client, whatever the protocols.
  std::vector<std::unique_ptr<api::BodyTransform>>* response_transforms = nullptr;
  TunnelLimits tunnel;         // for requests that upgrade (WebSocket)
  bool preserve_host = true;   // false: Host is the chosen target's configured host:port
  Clock::duration deadline{};  // the client's own deadline (grpc-timeout), 0 = none
};

// Buffers kept by the session across its requests, so that a steady stream of requests on a
// connection does not allocate.
struct ExchangeScratch {
  std::string head;             // the upstream request head
  std::string out;              // the response head for the client
  http::ResponseHead response;  // response filters edit it through ctx.response
  std::vector<asio::const_buffer> spans;
  std::string joined;  // small TLS writes joined into one record
  upstream::Excluded tried;
  std::string transform_error;           // why a response body transform failed
  std::vector<std::string_view> pieces;  // the body pieces of one round of a stream relay
  std::string pool_key;                  // a TLS upstream's connection pool key
};

struct ExchangeResult {
  bool responded = false;    // a response (perhaps cut short) went to the client
  bool keep_client = false;  // the client connection can serve another request
  int status = 0;            // status sent, or the error status to answer when !responded
  const char* error = "";    // reason when Portico has to answer the error itself
  // The upstream answered well but Portico cannot relay it (a body transform failed): the
  // failure counts against neither the upstream nor its target.
  bool upstream_ok = false;
};

}  // namespace portico::proxy
