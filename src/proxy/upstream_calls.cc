#include "proxy/upstream_calls.h"

#include <cstdio>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include "proxy/deadline_io.h"
#include "proxy/origin_upstreams.h"

namespace portico::proxy {

namespace {

using boost::system::error_code;

// Collects a call's response: head and body (up to a limit, or dropped); trailers are dropped.
class CollectingStream final : public ResponseStream {
 public:
  CollectingStream(api::CallResponse& out, const api::CallRequest& req) : out_(out), req_(req) {}
  Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) override {
    out_.status = resp.status;
    out_.headers = resp.headers;
    if (!req_.on_head) co_return true;
    bool more = req_.on_head(resp.status, resp.headers);
    if (more && end_stream && req_.on_data) more = req_.on_data({}, true);
    stopped_ |= !more;
    co_return more;
  }
  Task<bool> sendData(std::string_view data, bool end_stream) override {
    if (req_.on_data) {
      const bool more = req_.on_data(data, end_stream);
      stopped_ |= !more;
      co_return more;
    }
    if (req_.discard_response) co_return true;
    if (out_.body.size() + data.size() > req_.max_response_bytes) {
      too_large_ = true;
      co_return false;
    }
    out_.body.append(data);
    co_return true;
  }
  Task<bool> sendTrailers(const http::HeaderList&) override {
    const bool more = req_.on_data ? req_.on_data({}, true) : true;
    stopped_ |= !more;
    co_return more;
  }
  bool tooLarge() const { return too_large_; }
  bool stopped() const { return stopped_; }  // a streamed response's consumer said stop

 private:
  api::CallResponse& out_;
  const api::CallRequest& req_;
  bool too_large_ = false;
  bool stopped_ = false;
};

}  // namespace

// One call: the exchange's "client" side. The request body waits in `body` (so the exchange
// sees a replayable request, and retries replay it); the response goes to `collector`.
struct CallState final : DeadlineIo, SessionBase, api::BodyWriter {
  CallState(WorkerContext& w, api::CallRequest r)
      : w_(w),
        request(std::move(r)),
        socket_(w.io),
        body_(16 * 1024),
        collector(response, request),
        more_(w.io.get_executor(), Clock::time_point::max()) {
    w_.add(this);
  }
  ~CallState() override { w_.remove(this); }

  WorkerContext& worker() override { return w_; }
  Socket& client() override { return socket_; }  // never written: responses go to collector
  TlsStream* clientTls() override { return nullptr; }
  ResponseStream* responseStream() override { return &collector; }
  IoBuffer& clientBuffer() override { return body_; }
  // A streamed body: what the writer queued, framed (chunked when no length was given); a
  // buffered one is all in body_ from the start.
  Task<std::size_t> readClient(asio::mutable_buffer space, error_code& ec) override {
    while (streamed && pending_.empty() && !ended_ && !cancelled && !aborted_ && !timed_out_ &&
           !totalExpired()) {
      error_code wait_ec;
      co_await more_.async_wait(asio::redirect_error(kUseAwaitable, wait_ec));
    }
    if (!streamed || cancelled || timed_out_ || totalExpired() || aborted_ ||
        (pending_.empty() && ended_)) {
      if (aborted_) {
        ec = asio::error::operation_aborted;
      } else {
        ec = asio::error::eof;
      }
      co_return 0;
    }
    const std::size_t n = std::min(space.size(), pending_.size());
    std::memcpy(space.data(), pending_.data(), n);
    pending_.erase(0, n);
    co_return n;
  }
  // api::BodyWriter
  bool write(std::string_view chunk) override {
    if (cancelled || ended_ || pending_.size() + chunk.size() > kMaxPending) return false;
    if (chunk.empty()) return true;
    if (!request.body_length) {
      char size[24];
      const int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
      pending_.append(size, static_cast<std::size_t>(n));
    }
    pending_.append(chunk);
    if (!request.body_length) pending_.append("\r\n");
    more_.cancel();
    return true;
  }
  void abort() override {
    aborted_ = true;
    more_.cancel();
  }
  void end() override {
    if (ended_) return;
    if (!request.body_length) pending_.append("0\r\n\r\n");
    ended_ = true;
    more_.cancel();
  }
  Task<bool> sendContinue() override { co_return true; }
  void cancelRead() override {}
  const RequestLimits& limits() const override { return limits_; }
  void checkDeadline(Clock::time_point now) override { DeadlineIo::checkDeadline(now); }
  void onDrain() override {}
  void cancelClientIo() override { more_.cancel(); }
  bool abandoned() const override { return cancelled; }

  void cancel() {
    cancelled = true;
    owner = nullptr;
    parent = nullptr;
    cancelAll();
  }

  WorkerContext& w_;
  api::CallRequest request;
  Socket socket_;
  IoBuffer body_;
  RequestLimits limits_;
  api::CallResponse response;
  CollectingStream collector;
  bool streamed = false;
  std::string pending_;  // streamed body bytes, framed, waiting for the exchange
  bool ended_ = false;
  bool aborted_ = false;
  Timer more_;  // cancelled when bytes arrive, the body ends, or the call is cancelled

  api::CallId id = 0;
  RequestCalls* owner = nullptr;  // null once cancelled or detached
  api::UpstreamCalls::Done done;
  bool cancelled = false;
  std::shared_ptr<const snapshot::Snapshot> snapshot;  // keeps the upstream alive
  std::shared_ptr<const OriginUpstream> origin;        // URL calls
  http::RequestHead head;
  ExchangeScratch scratch;
  api::RequestContext ctx;
  api::RequestContext* parent = nullptr;  // for spans; null once the request is gone
};

namespace {

void fail(api::CallResponse& r, int status, std::string error) {
  r.status = 0;
  r.error_status = status;
  r.error = std::move(error);
}

Task<void> runCall(std::shared_ptr<CallState> call) {
  CallState& c = *call;
  const snapshot::Upstream* up = nullptr;
  if (!c.request.url.empty()) {
    auto origin = co_await originUpstream(c.w_, c.request.url, c.request.ca_file);
    if (!origin) {
      fail(c.response, 502, origin.error().message);
    } else {
      c.origin = std::move(*origin);
      up = &c.origin->upstream;
    }
  } else {
    up = c.snapshot->findUpstream(c.request.upstream);
    if (!up) {
      fail(c.response, 503, "unknown upstream \"" + c.request.upstream + "\"");
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
    ExchangeResult r =
        co_await exchangeWithUpstream(c, *up, c.head, c.head.target, c.ctx, hooks, c.scratch);
    if (c.collector.tooLarge()) {
      fail(c.response, 502, "call response too large");
    } else if (c.collector.stopped()) {
      fail(c.response, 502, "call response stopped by its reader");
    } else if (!r.responded) {
      fail(c.response, r.status ? r.status : 502, r.error);
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
  if (c.cancelled) co_return;
  RequestCalls* owner = c.owner;
  auto done = std::move(c.done);
  if (owner) owner->finished(c);
  if (done) done(std::move(c.response));
}

}  // namespace

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
  return {std::shared_ptr<api::BodyWriter>(call, call.get()), id};
}

std::shared_ptr<CallState> RequestCalls::launch(api::CallRequest request, Done done,
                                                bool streamed) {
  const api::CallId id = next_id_++;
  const auto& lim = (*snapshot_)->config.server.limits;
  const bool to_url = !request.url.empty();
  if (to_url == !request.upstream.empty() || running_.size() >= lim.max_calls_per_request) {
    api::CallResponse r;
    fail(r, to_url == !request.upstream.empty() ? 500 : 503,
         to_url == !request.upstream.empty() ? "a call names one upstream or one URL"
                                             : "too many calls for one request");
    deliverLater(std::move(done), std::move(r), request.detached);
    return nullptr;
  }
  auto call = std::make_shared<CallState>(w_, std::move(request));
  CallState& c = *call;
  c.id = id;
  c.done = std::move(done);
  c.snapshot = *snapshot_;
  c.limits_.head.max_header_bytes = lim.max_header_bytes;
  c.limits_.head.max_headers = lim.max_headers;
  c.limits_.head.max_uri_bytes = lim.max_uri_bytes;
  c.limits_.max_body_bytes =
      streamed ? c.request.body_length.value_or(lim.max_body_bytes) : c.request.body.size();
  c.streamed = streamed;
  c.limits_.idle_timeout = lim.idle_timeout;

  // The request as the exchange sees it: head, and the whole body already "received".
  auto& h = c.head;
  h.method = c.request.method;
  h.target = to_url ? originTarget(c.request.url) : c.request.target;
  if (h.target.empty() || h.target.front() != '/') h.target.insert(0, "/");
  const auto q = h.target.find('?');
  h.path = h.target.substr(0, q);
  h.query = q == std::string::npos ? std::string() : h.target.substr(q + 1);
  if (parent_ && parent_->request) h.host = parent_->request->host;  // X-Forwarded-Host
  h.headers = std::move(c.request.headers);
  h.headers.set("Host", to_url ? originAuthority(c.request.url) : c.request.host);
  if (streamed) {
    h.framing =
        c.request.body_length ? http::BodyFraming::ContentLength : http::BodyFraming::Chunked;
    h.content_length = c.request.body_length.value_or(0);
  } else if (!c.request.body.empty()) {
    h.framing = http::BodyFraming::ContentLength;
    h.content_length = c.request.body.size();
    c.body_.reserve(c.request.body.size());
    std::memcpy(c.body_.writePtr(), c.request.body.data(), c.request.body.size());
    c.body_.commit(c.request.body.size());
    c.request.body.clear();
  }

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
  if (c.request.detached) {
    c.parent = nullptr;  // may outlive the request: its spans are not kept
  } else {
    c.owner = this;
    running_.push_back(call);
  }
  asio::co_spawn(w_.io.get_executor(), runCall(call), asio::detached);
  return call;
}

void RequestCalls::mirrorDropped(const std::string& upstream) {
  w_.stats.upstream(upstream).mirror_dropped.add();
}

void RequestCalls::finished(CallState& call) {
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
    fail(r, 499, "client closed");
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

void RequestCalls::cancelAll() {
  for (auto& c : running_) c->cancel();
  running_.clear();
}

}  // namespace portico::proxy
