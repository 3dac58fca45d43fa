#include "proxy/upstream_calls.h"

#include <cstdio>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include "proxy/call_parts.h"
#include "proxy/deadline_io.h"
#include "proxy/exchange.h"
#include "proxy/origin_upstreams.h"

namespace portico::proxy {

// One call to an upstream or URL: the exchange's "client" side. A buffered request body waits
// in `body` (so the exchange sees a replayable request, and retries replay it); the response
// goes to `collector`.
struct CallState final : RunningCall, DeadlineIo, SessionBase {
  CallState(WorkerContext& w, api::CallRequest r)
      : w_(w), request(std::move(r)), socket_(w.io), body(w.io), collector(response, request) {
    w_.add(this);
  }
  ~CallState() override { w_.remove(this); }

  WorkerContext& worker() override { return w_; }
  Socket& client() override { return socket_; }  // never written: responses go to collector
  TlsStream* clientTls() override { return nullptr; }
  ResponseStream* responseStream() override { return &collector; }
  IoBuffer& clientBuffer() override { return body.buffer(); }
  Task<std::size_t> readClient(asio::mutable_buffer space, boost::system::error_code& ec) override {
    return body.read(space, ec, [this] { return cancelled || timed_out_ || totalExpired(); });
  }
  Task<bool> sendContinue() override { co_return true; }
  void cancelRead() override {}
  const RequestLimits& limits() const override { return limits_; }
  void checkDeadline(Clock::time_point now) override { DeadlineIo::checkDeadline(now); }
  void onDrain() override {}
  void cancelClientIo() override { body.wake(); }
  bool abandoned() const override { return cancelled; }

  api::BodyWriter& bodyWriter() override { return body; }
  void run(std::shared_ptr<RunningCall> self) override;
  void cancel() override {
    cancelled = true;
    owner = nullptr;
    parent = nullptr;
    body.close();
    cancelAll();
  }

  WorkerContext& w_;
  api::CallRequest request;
  Socket socket_;
  CallBody body;
  RequestLimits limits_;
  api::CallResponse response;
  CollectingStream collector;

  std::shared_ptr<const snapshot::Snapshot> snapshot;  // keeps the upstream alive
  std::shared_ptr<const OriginUpstream> origin;        // URL calls
  http::RequestHead head;
  ExchangeScratch scratch;
  api::RequestContext ctx;
  api::RequestContext* parent = nullptr;  // for spans; null once the request is gone
};

namespace {

Task<void> runCall(std::shared_ptr<CallState> call) {
  CallState& c = *call;
  const snapshot::Upstream* up = nullptr;
  if (!c.request.url.empty()) {
    auto origin = co_await originUpstream(c.w_, c.request.url, c.request.ca_file);
    if (!origin) {
      failCall(c.response, 502, origin.error().message);
    } else {
      c.origin = std::move(*origin);
      up = &c.origin->upstream;
    }
  } else {
    up = c.snapshot->findUpstream(c.request.upstream);
    if (!up) {
      failCall(c.response, 503, "unknown upstream \"" + c.request.upstream + "\"");
    } else {
      auto& stats = c.w_.stats.upstream(c.request.upstream);
      stats.calls.add();
      if (c.request.mirror) stats.mirrored.add();
    }
  }
  if (up && !c.cancelled) {
    ExchangeHooks hooks;
    hooks.preserve_host = c.origin || !c.request.host.empty();
    hooks.deadline = c.request.timeout;
    detail::Exchange exchange(c, *up, c.head, c.head.target, c.ctx, hooks, c.scratch);
    ExchangeResult r = co_await exchange.run();
    if (*c.collector.failure()) {
      failCall(c.response, 502, c.collector.failure());
    } else if (!r.responded) {
      failCall(c.response, r.status ? r.status : 502, r.error);
    }
  }
  // The call's own span, with its attempts as children, joins the request's trace.
  if (c.ctx.trace.sampled && c.parent && !c.cancelled) {
    api::Span span;
    span.id = c.ctx.trace.span;
    span.parent = c.parent->trace.span;
    span.kind = 3;
    span.name = c.request.span_name.empty()
                    ? "call " + (c.request.upstream.empty() ? c.request.url : c.request.upstream)
                    : c.request.span_name;
    auto ns = [&](Clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 c.w_.wallTime(t).time_since_epoch())
          .count();
    };
    span.start_ns = ns(c.ctx.start);
    span.end_ns = ns(c.w_.time.steady());
    if (c.request.url.empty()) {
      span.attr("portico.upstream", c.request.upstream);
    } else {
      span.attr("url.full", c.request.url);
    }
    if (c.response.ok()) {
      span.attr("http.response.status_code", static_cast<std::int64_t>(c.response.status));
    } else {
      span.error = true;
      span.attr("portico.error", c.response.error);
    }
    c.parent->trace.children.push_back(std::move(span));
    for (auto& child : c.ctx.trace.children) c.parent->trace.children.push_back(std::move(child));
  }
  completeCall(c, std::move(c.response));
}

}  // namespace

void CallState::run(std::shared_ptr<RunningCall> self) {
  asio::co_spawn(w_.io.get_executor(), runCall(std::static_pointer_cast<CallState>(self)),
                 asio::detached);
}

void RequestCalls::begin(const std::shared_ptr<const snapshot::Snapshot>& snapshot,
                         api::RequestContext* parent) {
  snapshot_ = &snapshot;
  parent_ = parent;
}

api::CallId RequestCalls::start(api::CallRequest request, Done done) {
  auto call = launch(std::move(request), std::move(done), false);
  return call ? call->id : next_id_ - 1;
}

std::pair<std::shared_ptr<api::BodyWriter>, api::CallId> RequestCalls::startStreamed(
    api::CallRequest request, Done done) {
  auto call = launch(std::move(request), std::move(done), true);
  if (!call) return {nullptr, next_id_ - 1};
  const api::CallId id = call->id;
  return {std::shared_ptr<api::BodyWriter>(call, &call->bodyWriter()), id};
}

std::shared_ptr<RunningCall> RequestCalls::launch(api::CallRequest request, Done done,
                                                  bool streamed) {
  const api::CallId id = next_id_++;
  // A detached call's `done` may run after the request (and this object) is gone.
  if (!request.detached) done = guarded(std::move(done));
  const auto& lim = (*snapshot_)->config.server.limits;
  const int targets = !request.upstream.empty() + !request.url.empty() + !request.route.empty();
  const snapshot::Route* route =
      request.route.empty() ? nullptr : (*snapshot_)->findRoute(request.route);
  const unsigned depth = parent_ ? parent_->call_depth : 0;
  auto refuse = [&](int status, std::string why) {
    api::CallResponse r;
    failCall(r, status, std::move(why));
    deliverLater(std::move(done), std::move(r), request.detached);
    return nullptr;
  };
  if (targets != (request.replay ? 0 : 1))
    return refuse(500, request.replay ? "a replay names no upstream, URL or route"
                                      : "a call names one upstream, one URL or one route");
  if (running_.size() >= lim.max_calls_per_request)
    return refuse(503, "too many calls for one request");
  if (!request.route.empty()) {
    if (!route || !route->cfg->internal)
      return refuse(500, "no internal route \"" + request.route + "\"");
    if (depth >= kMaxCallDepth) return refuse(508, "internal route calls nested too deep");
  }

  const bool detached = request.detached;
  std::shared_ptr<RunningCall> call =
      route || request.replay
          ? makeInternalCall(w_, *snapshot_, route, std::move(request), streamed, parent_)
          : makeUpstreamCall(std::move(request), streamed);
  call->id = id;
  call->done = std::move(done);
  if (!detached) {  // a detached call is nobody's to cancel
    call->owner = this;
    running_.push_back(call);
  }
  call->run(call);
  return call;
}

std::shared_ptr<RunningCall> RequestCalls::makeUpstreamCall(api::CallRequest request,
                                                            bool streamed) {
  const auto& lim = (*snapshot_)->config.server.limits;
  const bool to_url = !request.url.empty();
  auto call = std::make_shared<CallState>(w_, std::move(request));
  CallState& c = *call;
  c.snapshot = *snapshot_;
  c.limits_.head.max_header_bytes = lim.max_header_bytes;
  c.limits_.head.max_headers = lim.max_headers;
  c.limits_.head.max_uri_bytes = lim.max_uri_bytes;
  c.limits_.max_body_bytes =
      streamed ? c.request.body_length.value_or(lim.max_body_bytes) : c.request.body.size();
  c.limits_.idle_timeout = lim.idle_timeout;

  // The request as the exchange sees it: head, and the whole body already "received".
  if (to_url) c.request.target = originTarget(c.request.url);
  buildCallHead(c.request, streamed, c.body, c.head);
  if (parent_ && parent_->request) c.head.host = parent_->request->host;  // X-Forwarded-Host
  c.head.headers.set("Host", to_url ? originAuthority(c.request.url) : c.request.host);

  c.ctx.start = w_.time.steady();
  if (parent_) {
    c.ctx.request_id = parent_->request_id;
    c.ctx.client_ip = parent_->client_ip;
    c.ctx.secure = parent_->secure;
    c.ctx.worker = &w_;
    if (parent_->trace.sampled) {
      c.ctx.trace.trace_hi = parent_->trace.trace_hi;
      c.ctx.trace.trace_lo = parent_->trace.trace_lo;
      c.ctx.trace.sampled = true;
      c.ctx.trace.span = w_.spanId();
      c.parent = parent_;
    }
  }
  if (c.request.detached) c.parent = nullptr;  // may outlive the request: spans not kept
  return call;
}

void RequestCalls::mirrorDropped(const std::string& upstream) {
  w_.stats.upstream(upstream).mirror_dropped.add();
}

void RequestCalls::finished(RunningCall& call) {
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if (it->get() == &call) {
      running_.erase(it);
      return;
    }
  }
}

void RequestCalls::cancel(api::CallId id) {
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if ((*it)->id == id) {
      (*it)->cancel();
      running_.erase(it);
      return;
    }
  }
}

void RequestCalls::abortAll() {
  auto calls = std::move(running_);
  running_.clear();
  for (auto& c : calls) {
    auto done = std::move(c->done);
    c->cancel();
    if (!done) continue;
    api::CallResponse r;
    failCall(r, 499, "client closed");
    deliverLater(std::move(done), std::move(r), false);
  }
}

void RequestCalls::deliverLater(Done done, api::CallResponse r, bool detached) {
  // From the loop, never inside start(); and only while the request is still the one that
  // made the call (end() replaces the token), unless the call was detached.
  if (!token_) token_ = std::make_shared<const int>(0);
  std::weak_ptr<const int> token = token_;
  asio::post(w_.io, [done = std::move(done), r = std::move(r), token, detached]() mutable {
    if (detached || !token.expired()) done(std::move(r));
  });
}

api::UpstreamCalls::Done RequestCalls::guarded(Done done) {
  return [this, done = std::move(done)](api::CallResponse r) {
    try {
      done(std::move(r));
    } catch (const std::exception& e) {
      spdlog::error("request {}: a call's completion ended by an exception: {}",
                    parent_ ? parent_->request_id : std::string(), e.what());
      if (callback_failed_) callback_failed_();
    }
  };
}

void RequestCalls::cancelAll() {
  for (auto& c : running_) c->cancel();
  running_.clear();
}

}  // namespace portico::proxy
