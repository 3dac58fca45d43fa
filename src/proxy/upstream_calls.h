#pragma once
// The upstream calls of one request (api::UpstreamCalls), run on the request's worker by the
// same exchange engine as the route's proxied request (proxy/upstream_exchange): each call gets
// its own CallIo, a SessionIo whose "client" side is the call's buffered request body and a
// response collector, registered with the worker's sweeper for its deadlines.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "api/request_context.h"
#include "api/upstream_calls.h"
#include "proxy/worker_context.h"

namespace portico::proxy {

class RunningCall;

// Internal route calls within internal route calls: past this depth a call fails with 508
// (a route that calls itself, directly or not, ends there).
inline constexpr unsigned kMaxCallDepth = 8;

// A call to an internal route, run in process by a request pipeline of its own (the route's
// plugins, then its upstream); made, not yet started (RunningCall::run).
std::shared_ptr<RunningCall> makeInternalCall(
    WorkerContext& w, const std::shared_ptr<const snapshot::Snapshot>& snapshot,
    const snapshot::Route* route, api::CallRequest request, bool streamed,
    const api::RequestContext* parent);

class RequestCalls final : public api::UpstreamCalls {
 public:
  explicit RequestCalls(WorkerContext& w) : w_(w) {}
  ~RequestCalls() override { cancelAll(); }

  // The request the calls belong to: its snapshot (upstream names; the caller keeps it for the
  // request, a call takes its own reference), its context (trace, ids).
  void begin(const std::shared_ptr<const snapshot::Snapshot>& snapshot,
             api::RequestContext* parent);
  // The request ended: running calls are cancelled (detached ones go on, on their own).
  void end() {
    if (!running_.empty()) cancelAll();
    snapshot_ = nullptr;
    parent_ = nullptr;
    token_.reset();  // answers posted for the old request are dropped
  }

  // The client went away: running calls end now, each `done` runs with error_status 499.
  void abortAll();

  api::CallId start(api::CallRequest request, Done done) override;
  std::pair<std::shared_ptr<api::BodyWriter>, api::CallId> startStreamed(api::CallRequest request,
                                                                         Done done) override;
  void cancel(api::CallId id) override;
  void mirrorDropped(const std::string& upstream) override;
  std::size_t running() const { return running_.size(); }

  // Called by a call as it finishes (not for cancelled or detached ones).
  void finished(RunningCall& call);

  // Runs when a call's `done` throws (a bug in the filter that made the call): the request,
  // which would wait for that filter's completion forever, answers instead.
  void onCallbackFailure(std::function<void()> failed) { callback_failed_ = std::move(failed); }

 private:
  void cancelAll();
  // Starts a call; null when it failed at once (`done` then gets its error from the loop).
  std::shared_ptr<RunningCall> launch(api::CallRequest request, Done done, bool streamed);
  std::shared_ptr<RunningCall> makeUpstreamCall(api::CallRequest request, bool streamed);
  // Runs `done` with `r` from the loop, unless the request ended meanwhile.
  void deliverLater(Done done, api::CallResponse r, bool detached);
  // `done` with its exception caught, logged and passed to callback_failed_.
  Done guarded(Done done);

  WorkerContext& w_;
  const std::shared_ptr<const snapshot::Snapshot>* snapshot_ = nullptr;
  api::RequestContext* parent_ = nullptr;
  std::vector<std::shared_ptr<RunningCall>> running_;
  api::CallId next_id_ = 1;
  std::shared_ptr<const int> token_;  // made when an answer is posted (not per request)
  std::function<void()> callback_failed_;
};

// Per worker: upstreams made on first use for the origins of URL calls (scheme, host, port),
// each with its own pool key, balancer and TLS context, resolved again after a minute.
struct OriginUpstreams;

}  // namespace portico::proxy
