// A call to an internal route: a request pipeline of its own, on the caller's worker and
// snapshot, whose "client" is the call (its request body in, its response collected). The
// route's plugins, upstream, retries, transforms and log phase run as for a listener's request;
// no socket is involved between the caller and the route.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <spdlog/spdlog.h>

#include "observability/tracing.h"
#include "proxy/call_parts.h"
#include "proxy/request_pipeline.h"
#include "proxy/upstream_calls.h"

namespace portico::proxy {
namespace {

class InternalCall final : public RunningCall, public SessionBase, public RequestPipeline {
 public:
  InternalCall(WorkerContext& w, api::CallRequest request)
      : RequestPipeline(w, conn_info_),
        request_(std::move(request)),
        socket_(w.io),
        body_(w.io),
        collector_(response_, request_) {
    w_.add(this);
  }
  ~InternalCall() override { w_.remove(this); }

  // `route` null: a replay, matched by the listeners' routes.
  void prepare(const std::shared_ptr<const snapshot::Snapshot>& snapshot,
               const snapshot::Route* route, bool streamed, const api::RequestContext* parent);

  // RunningCall
  api::BodyWriter& bodyWriter() override { return body_; }
  void run(std::shared_ptr<RunningCall> self) override {
    asio::co_spawn(w_.io.get_executor(),
                   serve(std::static_pointer_cast<InternalCall>(std::move(self))), asio::detached);
  }
  void cancel() override {
    if (cancelled) return;
    cancelled = true;
    owner = nullptr;
    body_.close();
    clientGone();  // the route's own calls end, a filter awaiting one completes
    cancelAll();   // and the upstream exchange, if it is running, stops
  }

  // SessionIo
  Socket& client() override { return socket_; }  // never used: answers go to the collector
  TlsStream* clientTls() override { return nullptr; }
  ResponseStream* responseStream() override { return &collector_; }
  IoBuffer& clientBuffer() override { return body_.buffer(); }
  Task<std::size_t> readClient(asio::mutable_buffer space, boost::system::error_code& ec) override {
    return body_.read(space, ec, [this] { return cancelled || timed_out_ || totalExpired(); });
  }
  Task<bool> sendContinue() override { co_return true; }
  void cancelRead() override {}
  bool abandoned() const override { return cancelled; }

  // SessionBase
  void checkDeadline(Clock::time_point now) override { RequestPipeline::checkDeadline(now); }
  void onDrain() override {}

 private:
  Task<void> serve(std::shared_ptr<InternalCall> keep_alive);

  // RequestPipeline
  void cancelClientIo() override { body_.wake(); }
  bool skipBufferedBody() override { return true; }  // nobody else reads the call's body
  Task<bool> writeLocalReply(const std::string& body, bool) override {
    const bool no_body = body.empty() || req_.method == "HEAD";
    if (!co_await collector_.sendHead(resp_, no_body)) co_return false;
    if (!no_body && !co_await collector_.sendData(body, true)) co_return false;
    ctx_.bytes_sent += body.size();
    co_return true;
  }
  std::string_view protocol() const override { return "internal"; }

  ConnectionInfo conn_info_;
  api::CallRequest request_;
  Socket socket_;
  CallBody body_;
  api::CallResponse response_;
  CollectingStream collector_;
};

void InternalCall::prepare(const std::shared_ptr<const snapshot::Snapshot>& snapshot,
                           const snapshot::Route* route, bool streamed,
                           const api::RequestContext* parent) {
  pinned_snapshot_ = snapshot;
  matcher_ = route ? route->internal_matcher.get() : nullptr;
  loadLimits();
  if (streamed && request_.body_length && *request_.body_length > limits_.max_body_bytes)
    limits_.max_body_bytes = *request_.body_length;  // answered 413 by the pipeline otherwise
  buildCallHead(request_, streamed, body_, req_);
  // The caller's identity of the request: its id, trace, client address and Host (unless the
  // call names its own); credentials only when the call's headers carry them.
  std::string host = request_.host;
  if (request_.replay && parent)
    replay_ = Replay{std::string(parent->route_name), request_.replay_from, parent->consumer,
                     parent->authenticated, parent->anonymous};
  if (parent) {
    call_depth_ = parent->call_depth + 1;
    conn_info_.client_ip = parent->client_ip;
    conn_info_.client_port = parent->client_port;
    req_.headers.set("X-Request-Id", parent->request_id);
    if (parent->trace.sampled)
      req_.headers.set("traceparent",
                       observability::formatTraceparent(parent->trace, parent->trace.span, true));
    if (host.empty() && parent->request) host = parent->request->host;
  }
  if (!host.empty()) req_.headers.set("Host", host);
  http::toLower(host);
  req_.host = std::move(host);
}

Task<void> InternalCall::serve(std::shared_ptr<InternalCall> /*keep_alive*/) {
  // An exception (a bug in the route's filters) must still answer the caller, who would
  // otherwise wait forever: this coroutine is detached, and would end silently.
  bool threw = false;
  try {
    co_await handleRequest();
  } catch (const std::exception& e) {
    spdlog::error("request {}: internal route call ended by an exception: {}", ctx_.request_id,
                  e.what());
    threw = true;
  }
  endRequest();
  if (cancelled) co_return;
  api::CallResponse r = std::move(response_);
  if (threw) {
    failCall(r, 500, "the internal route failed");
  } else if (*collector_.failure()) {
    failCall(r, 502, collector_.failure());
  } else if (r.status == 0) {
    failCall(r, 502, ctx_.error.empty() ? "internal route gave no answer" : ctx_.error);
  }
  completeCall(*this, std::move(r));
}

}  // namespace

std::shared_ptr<RunningCall> makeInternalCall(
    WorkerContext& w, const std::shared_ptr<const snapshot::Snapshot>& snapshot,
    const snapshot::Route* route, api::CallRequest request, bool streamed,
    const api::RequestContext* parent) {
  auto call = std::make_shared<InternalCall>(w, std::move(request));
  call->prepare(snapshot, route, streamed, parent);
  return call;
}

}  // namespace portico::proxy
