#pragma once
// Internal to upstream calls (proxy/upstream_calls.cc, proxy/internal_call.cc): what every
// call has, whether it goes to an upstream or URL through the exchange engine, or to an
// internal route through a request pipeline run in process.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "api/upstream_calls.h"
#include "core/io_buffer.h"
#include "proxy/io_types.h"
#include "proxy/upstream_exchange.h"
#include "proxy/wake_event.h"

namespace portico::proxy {

class RequestCalls;

// A running call, as the request's RequestCalls tracks it.
class RunningCall {
 public:
  virtual ~RunningCall() = default;
  // Stops the call at once (connection closed, pool slot freed); `done` never runs.
  virtual void cancel() = 0;
  virtual api::BodyWriter& bodyWriter() = 0;
  // Starts it on the worker's loop (`self` is this call, kept alive while it runs).
  virtual void run(std::shared_ptr<RunningCall> self) = 0;

  api::CallId id = 0;
  RequestCalls* owner = nullptr;  // null once cancelled or detached
  api::UpstreamCalls::Done done;
  bool cancelled = false;
};

// Hands a finished call's response to its owner and its `done` (unless it was cancelled).
void completeCall(RunningCall& call, api::CallResponse response);

// A call's request body as its reader (an exchange, or an internal route's pipeline) takes it:
// buffered (all there from the start, replayable by retries) or streamed (written as it comes
// through the BodyWriter side, framed chunked when no length was given).
class CallBody final : public api::BodyWriter {
 public:
  explicit CallBody(asio::io_context& io) : buffered_(16 * 1024), more_(io.get_executor()) {}

  // The whole body now (moved from `body`).
  void fill(std::string& body);
  // The body will be written as it comes; `length` frames it (none: chunked).
  void stream(std::optional<std::uint64_t> length) {
    streamed_ = true;
    length_ = length;
  }
  bool streamed() const { return streamed_; }
  IoBuffer& buffer() { return buffered_; }

  // Reads the next bytes of a streamed body, waiting for them; 0 with `ec` at its end, when it
  // was aborted, or when `stopped()` says the reader has given up. A buffered body has nothing
  // more to read (it is all in buffer()).
  Task<std::size_t> read(asio::mutable_buffer space, boost::system::error_code& ec,
                         std::function<bool()> stopped);
  // Wakes a pending read (a deadline passed, the call ended).
  void wake() { more_.wake(); }
  // Nobody reads any more: write() refuses from now on.
  void close() {
    closed_ = true;
    wake();
  }

  // api::BodyWriter
  bool write(std::string_view chunk) override;
  void end() override;
  void abort() override {
    aborted_ = true;
    wake();
  }

 private:
  IoBuffer buffered_;
  bool streamed_ = false;
  std::optional<std::uint64_t> length_;
  std::string pending_;  // streamed body bytes, framed, waiting for the reader
  bool ended_ = false;
  bool aborted_ = false;
  bool closed_ = false;
  WakeEvent more_;  // woken when bytes arrive, the body ends, or the reader should look again
};

// Collects a call's response: head and body (up to a limit, or dropped, or handed piece by
// piece to the caller's on_head / on_data); trailers are dropped.
class CollectingStream final : public ResponseStream {
 public:
  CollectingStream(api::CallResponse& out, const api::CallRequest& req) : out_(out), req_(req) {}
  Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) override;
  Task<bool> sendData(std::string_view data, bool end_stream) override;
  Task<bool> sendTrailers(const http::HeaderList&) override;

  bool tooLarge() const { return too_large_; }
  bool stopped() const { return stopped_; }  // a streamed response's consumer said stop
  // Why a call that got an answer failed anyway ("" when it did not).
  const char* failure() const {
    return too_large_ ? "call response too large"
           : stopped_ ? "call response stopped by its reader"
                      : "";
  }

 private:
  api::CallResponse& out_;
  const api::CallRequest& req_;
  bool too_large_ = false;
  bool stopped_ = false;
};

// The request head of a call as its reader sees it: method, target (path and query), headers
// (moved from the request) and framing; a buffered body moves into `body`.
void buildCallHead(api::CallRequest& request, bool streamed, CallBody& body,
                   http::RequestHead& head);

// Marks a call's response as failed, with the status Portico would answer and why.
inline void failCall(api::CallResponse& r, int status, std::string error) {
  r.status = 0;
  r.error_status = status;
  r.error = std::move(error);
}

}  // namespace portico::proxy
