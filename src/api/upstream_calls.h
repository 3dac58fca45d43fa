#pragma once
// Upstream calls: how the core and any filter send a request to another service and use its
// answer, on the request's worker loop. The route's own proxied exchange runs on the same
// engine (proxy/upstream_exchange): a call to a configured upstream gets that upstream's
// balancer, connection pool, health, outlier ejection, circuit breaker, retries, retry budget,
// timeouts, TLS and `protocol: h2|h2c`, and its /metrics series count the call.
//
// Contract:
//   - start() is called on the worker thread of the request; `done` runs later on that same
//     thread, exactly once, unless the call was cancelled first (then never).
//   - A call belongs to its request. When the client goes away, every call still running ends
//     at once: its connection is closed, its pool slot freed, and `done` runs with
//     error_status 499 ("client closed"), so the filter awaiting it completes. When the request
//     has ended, calls still running are cancelled the same way but `done` never runs.
//     Detached calls (fire-and-forget, e.g. traffic mirroring) are not tied to the request:
//     they run to their end, bounded by their deadline, and need no `done`.
//   - At most server.limits.max_calls_per_request calls of one request run at once; past that
//     start() fails the call at once (done gets error_status 503).
//   - A sampled request gets one client span per call (child of the request's span); each
//     attempt is a child of the call's span.
// No Boost.Asio here.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "http/header_list.h"

namespace portico::api {

struct CallRequest {
  // Where to: exactly one of these.
  std::string upstream;  // a configured upstream, by name
  std::string url;       // an absolute http:// or https:// URL (pooled per origin on the worker)
  // An internal route (`internal: true`), by name: run in process, no socket; its plugins run,
  // `target` is matched against its path (parameters) and methods.
  std::string route;

  std::string method = "GET";
  std::string target = "/";  // upstream and route calls: path and query; ignored with `url`
  // Host sent to an upstream ("" = the chosen target's configured host:port); URL calls always
  // send the URL's authority.
  std::string host;
  http::HeaderList headers;  // besides Host and framing, which the engine writes
  std::string body;          // sent with Content-Length (empty: no body)
  // The body is written as it comes, through the BodyWriter that startStreamed() returns
  // (`body` is then unused): with Content-Length when `body_length` is set, else chunked.
  std::optional<std::uint64_t> body_length;

  // The whole call, retries included (0 = the upstream's own timeouts only).
  std::chrono::milliseconds timeout{0};
  std::size_t max_response_bytes = 8 * 1024 * 1024;  // past it the call fails (502)
  bool discard_response = false;                     // the body is read and dropped (mirroring)
  // A streamed response: `on_head` gets the status and headers as soon as they arrive, then
  // `on_data` each piece of the body (end = true once, at its end); either returns false to
  // stop reading (the call then fails). `done` still runs at the end, without the body.
  // Both run on the worker.
  std::function<bool(int status, const http::HeaderList& headers)> on_head;
  std::function<bool(std::string_view piece, bool end)> on_data;
  // None of the three: the request goes through the listeners' routes like a client's, in
  // process, from the route's filter `replay_from` on (the filters before it are skipped; the
  // caller's consumer stands): a cache refreshing a stored answer in the background replays its
  // client's request. Answered 500 when it now matches another route than the caller's.
  bool replay = false;
  std::size_t replay_from = 0;
  bool detached = false;  // not cancelled with the request (fire-and-forget)
  bool mirror = false;    // a mirrored copy (counted as such in the upstream's series)
  std::string ca_file;    // URL calls over https: trust anchors ("" = the system's)
  std::string span_name;  // the call's span ("" = "call <upstream or host>")
};

struct CallResponse {
  int status = 0;  // the upstream's status; 0 when the call failed
  http::HeaderList headers;
  std::string body;
  // When status is 0: the status Portico would answer for it (502, 503, 504) and why.
  int error_status = 0;
  std::string error;
  bool ok() const { return status != 0; }
};

using CallId = std::uint64_t;

// The request body of a streamed call, written as it comes. At most `max_pending` bytes may
// wait for the upstream: write() returns false past that (or when the call has ended), and the
// caller gives up (cancel the call). Worker thread only.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  virtual bool write(std::string_view chunk) = 0;
  virtual void end() = 0;
  // The body will not be finished: the call fails (its `done` runs with an error).
  virtual void abort() = 0;
  static constexpr std::size_t kMaxPending = 1024 * 1024;
};

class UpstreamCalls {
 public:
  using Done = std::function<void(CallResponse)>;
  virtual ~UpstreamCalls() = default;
  // Starts a call; see the contract above. Returns an id for cancel().
  virtual CallId start(CallRequest request, Done done) = 0;
  // The same with a body written as it comes (request.body_length says how it is framed).
  // Returns the writer (valid as long as the caller holds it) and the call's id.
  virtual std::pair<std::shared_ptr<BodyWriter>, CallId> startStreamed(CallRequest request,
                                                                       Done done) = 0;
  // Cancels a call still running: `done` will not run. Unknown or finished ids are ignored.
  virtual void cancel(CallId id) = 0;
  // A mirrored copy for `upstream` was not sent (counted in its /metrics series).
  virtual void mirrorDropped(const std::string& upstream) = 0;
};

}  // namespace portico::api
