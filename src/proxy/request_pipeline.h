#pragma once
// The protocol-independent life of one request: request id, snapshot, client-certificate
// headers, route, filters, local replies, the upstream exchange and the log phase. An HTTP/1
// connection runs one request after another through its pipeline; an HTTP/2 connection has one
// pipeline per stream. The protocol supplies reads and writes (SessionIo) and the two hooks
// below; everything else is written once.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/filter.h"
#include "proxy/deadline_io.h"
#include "proxy/upstream_calls.h"
#include "tls/server_context.h"

namespace portico::proxy {

// What a request knows of the connection it came on.
struct ConnectionInfo {
  std::string client_ip;
  std::uint16_t client_port = 0;
  std::shared_ptr<const tls::ServerContext> tls;  // the listener's TLS context, if any
  tls::PeerIdentity peer;                         // client certificate, after the handshake
};

class RequestPipeline : public DeadlineIo {
 public:
  WorkerContext& worker() override { return w_; }
  const RequestLimits& limits() const override { return limits_; }

  // The client went away while the request waits for an asynchronous filter phase: its
  // upstream calls end at once (their filters complete), and the request ends with 499.
  void clientGone();
  bool awaitingPhase() const { return awaiting_phase_; }

 protected:
  RequestPipeline(WorkerContext& w, const ConnectionInfo& conn) : w_(w), conn_(conn), calls_(w) {
    calls_.onCallbackFailure([this] {
      if (fail_phase_) fail_phase_();
    });
  }
  ~RequestPipeline() = default;

  // Drops the request body if it is already buffered; false if it is not (all there).
  virtual bool skipBufferedBody() = 0;
  // Sends resp_ with `body`; returns whether the connection can serve another request.
  virtual Task<bool> writeLocalReply(const std::string& body, bool close) = 0;
  virtual std::string_view protocol() const = 0;

  void loadLimits();  // from the snapshot current now
  void beginRequest();
  // Instances of these filters for this request (global ones for requests answered before
  // routing, so that their response and log phases still run).
  void createFilters(const snapshot::FilterFactories& factories);
  // Runs the request in req_ to its end; returns whether the connection may continue.
  Task<bool> handleRequest();
  Task<bool> replyError(int status, std::string_view reason, bool close,
                        std::string_view allow = {});
  // The JSON error (grpc-status for a gRPC client) in ctx_.local_reply; sets ctx_.error.
  void setErrorReply(int status, std::string_view reason, std::string_view allow = {});
  // After handleRequest threw (a bug): the request's calls end, and a 500 goes out unless part
  // of the response has already left (`response_started`: its head is out, or the stream is
  // gone), with no filter or transform run on it (one of them may be what threw). An HTTP/1.1
  // connection is to close after it.
  Task<void> answerAfterException(bool response_started);
  void endRequest();  // drops the per-request references

  WorkerContext& w_;
  const ConnectionInfo& conn_;
  RequestLimits limits_;
  http::RequestHead req_;
  ExchangeScratch scratch_;
  http::ResponseHead& resp_ = scratch_.response;
  api::RequestContext ctx_;
  bool grpc_ = false;  // the request is a gRPC call: errors are answered as gRPC statuses
  // A call to an internal route: the caller's snapshot, the route's own matcher (instead of the
  // listeners'), and how deep in internal calls it runs.
  std::shared_ptr<const snapshot::Snapshot> pinned_snapshot_;
  const router::RouteMatcher* matcher_ = nullptr;
  unsigned call_depth_ = 0;
  // A replay (api::CallRequest::replay): the client's request again, from one of its route's
  // filters on, for the caller's consumer.
  struct Replay {
    std::string route;
    std::size_t from_filter = 0;
    const api::Consumer* consumer = nullptr;
    bool authenticated = false;
    bool anonymous = false;
  };
  std::optional<Replay> replay_;

 private:
  // An answer decided before the request filters run (status 0: none, the request goes on).
  struct EarlyAnswer {
    int status = 0;
    const char* reason = "";
    bool close = false;
  };
  // Request id, snapshot, client certificate, size limit, route and filters: everything before
  // the first filter runs. Sets `compiled` to the matched route.
  EarlyAnswer routeRequest(const router::CompiledRoute*& compiled);
  // The request filters; the request's end (whether the connection may continue) when one
  // answered or refused, nullopt when the request goes on.
  Task<std::optional<bool>> runRequestFilters();
  Task<bool> filterThenForward(const router::CompiledRoute& compiled);
  // The route's flow or upstream exchange, and the answer when it failed.
  Task<bool> forward(const router::CompiledRoute& compiled);
  Task<bool> replyLocal(bool close);
  bool acceptAnonymous();
  Task<bool> refuseRequest(api::LocalReply reply);
  void countRefusal();
  void clearConsumerHeaders(const config::ConsumerHeaders& names);
  void applyConsumerHeaders(const config::ConsumerHeaders& names);
  // Response filters in reverse order from resp_next_; true when one went asynchronous (the
  // rest of the phase then runs in finishResponseFilters).
  bool runResponseFilters();
  Task<void> finishResponseFilters();
  // Awaits an asynchronous filter phase: `start` gets the completion the filter calls.
  Task<api::FilterStatus> awaitPhase(const std::function<void(api::Filter::Completion)>& start);
  // Request body transforms: reads the whole body (within max_body_bytes), feeding it through
  // the transforms (if any) as it arrives, into request_body_. Returns 0, or the status to answer
  // (ctx_.error says why; 499 when the client went away).
  Task<int> transformRequestBody();
  // transformRequestBody, then the answer when it refused: the transform's own (a validator's
  // report) or the JSON error. nullopt when the body was read; else whether to keep the
  // connection.
  Task<std::optional<bool>> readWholeBody();
  // A route with a flow: reads the body if the flow uses it, runs the calls, answers.
  Task<bool> runFlow();
  // Applies the response body transforms to a local reply's body; false when one failed.
  bool transformLocalBody(std::string& body);
  void finish(int status);
  // Tracing (only when the snapshot has a tracer): ids and sampling at the start, the spans
  // handed to the exporter at the end.
  void startTrace();
  void finishTrace();
  bool applyClientCertificate();

  // While a release runs (not for internal calls, which keep their caller's snapshot): the
  // side this request is on, from hash(credential or request id) % 100 against the candidate's
  // share. So a consumer stays on one side.
  void pickReleaseSide();

  std::shared_ptr<const snapshot::Snapshot> snapshot_;
  int release_side_ = -1;  // observability::ReleaseSide, or -1 when no release runs
  const snapshot::Route* route_ = nullptr;
  observability::RouteStats* route_stats_ = nullptr;
  std::vector<api::FilterPtr> filters_;
  std::size_t filters_ran_ = 0;
  std::size_t first_filter_ = 0;           // a replay skips the filters before it
  std::size_t resp_next_ = 0;              // next response filter (counting down)
  api::Filter* async_response_ = nullptr;  // the response filter that went asynchronous
  bool awaiting_phase_ = false;
  // While a phase waits: ends it with a 500 (once, whoever completes it first). For a filter
  // whose start, or whose call's callback, threw before it could complete the phase.
  std::function<void()> fail_phase_;
  bool client_gone_ = false;
  bool skip_transforms_ = false;
  RequestCalls calls_;
  std::string request_body_;  // a transformed request body, while it is forwarded
  std::string target_;
  std::string allow_;                // a 405's Allow header
  api::LocalReply pending_refusal_;  // auth_mode any: the first refusal, while others may accept
  api::AuthFailure pending_failure_ = api::AuthFailure::None;
};

}  // namespace portico::proxy
