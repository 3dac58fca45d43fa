#include "proxy/request_pipeline.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <atomic>
#include <stdexcept>

#include "core/error_body.h"
#include "core/request_id.h"
#include "flow/flow_run.h"
#include "grpc/grpc_status.h"
#include "http/codec/chunked_decoder.h"
#include "proxy/body_transforms.h"
#include "proxy/exchange.h"
#include "proxy/message_writer.h"

namespace portico::proxy {

void RequestPipeline::loadLimits() {
  const auto& lim = (pinned_snapshot_ ? pinned_snapshot_ : w_.snapshot)->config.server.limits;
  limits_.head.max_header_bytes = lim.max_header_bytes;
  limits_.head.max_headers = lim.max_headers;
  limits_.head.max_uri_bytes = lim.max_uri_bytes;
  limits_.max_body_bytes = lim.max_body_bytes;
  limits_.idle_timeout = lim.idle_timeout;
}

void RequestPipeline::beginRequest() {
  ctx_.reset();
  // gRPC only runs over HTTP/2: HTTP/1 requests skip the header scan.
  grpc_ = protocol() == "HTTP/2" && grpc::isGrpcRequest(req_.headers);
  ctx_.request = &req_;
  ctx_.start = w_.time.steady();
  ctx_.wall_start = w_.wallTime(ctx_.start);
  ctx_.worker = &w_;
  ctx_.calls = &calls_;
  ctx_.call_depth = call_depth_;
  client_gone_ = false;
  skip_transforms_ = false;
  async_response_ = nullptr;
  ctx_.client_ip = conn_.client_ip;
  ctx_.client_port = conn_.client_port;
  ctx_.secure = conn_.tls != nullptr;
  ctx_.protocol = protocol();
  if (conn_.peer.verified) {
    ctx_.tls_client_subject = conn_.peer.subject;
    ctx_.tls_client_sans = conn_.peer.sans;
  }
  ctx_.original_method.assign(req_.method);
  ctx_.original_path.assign(req_.target);
  filters_.clear();
  filters_ran_ = first_filter_ = 0;
  pending_failure_ = api::AuthFailure::None;
  route_ = nullptr;
  route_stats_ = nullptr;
  release_side_ = -1;
}

namespace {

// FNV-1a: spreads request ids and keys evenly over 100 buckets.
std::uint64_t releaseHash(std::string_view key) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// The `apikey` query parameter's value (key-auth's default), or "".
std::string_view queryApiKey(std::string_view query) {
  for (std::size_t at = 0; at < query.size();) {
    const std::size_t end = std::min(query.find('&', at), query.size());
    const std::string_view pair = query.substr(at, end - at);
    if (pair.starts_with("apikey=")) return pair.substr(7);
    at = end + 1;
  }
  return {};
}

}  // namespace

void RequestPipeline::pickReleaseSide() {
  // The credential a consumer presents, read before routing: bearer token, basic user and
  // password, or key-auth's API key (header or query); else the request id.
  std::string_view key = ctx_.request_id;
  if (const std::string* h = req_.headers.find("authorization")) {
    key = *h;
  } else if (const std::string* k = req_.headers.find("apikey")) {
    key = *k;
  } else if (const auto q = queryApiKey(req_.query); !q.empty()) {
    key = q;
  }
  const bool candidate = releaseHash(key) % 100 < w_.candidate_percent;
  release_side_ = candidate ? observability::kCandidateSide : observability::kStableSide;
  if (candidate) snapshot_ = w_.candidate;
}

void RequestPipeline::endRequest() {
  calls_.end();
  snapshot_.reset();
  filters_.clear();
  route_ = nullptr;
}

void RequestPipeline::createFilters(const snapshot::FilterFactories& factories) {
  for (const auto& f : factories) filters_.push_back(f->create());
}

// Not a coroutine: it returns the awaitable of the step that takes the request on (whatever
// it refers to outlives the request: the snapshot's route, static reasons, members), so that
// a request costs no frame of its own here. The request runs as small coroutines (the request
// filters, the forwarding) around synchronous steps: every coroutine call costs a frame and
// two resumptions, and GCC keeps every local and co_await temporary of a coroutine in its
// frame (test/alloc/proxy_allocations_test.cc holds the path to no allocation).
Task<bool> RequestPipeline::handleRequest() {
  const router::CompiledRoute* compiled = nullptr;
  const EarlyAnswer early = routeRequest(compiled);
  if (early.status) {
    return replyError(early.status, early.reason, early.close,
                      early.status == 405 ? std::string_view(allow_) : "");
  }
  // A route without filters (pass-through) has nothing for that coroutine to do: no frame.
  if (filters_ran_ < filters_.size() || ctx_.consumer || ctx_.max_body_bytes)
    return filterThenForward(*compiled);
  return forward(*compiled);
}

Task<bool> RequestPipeline::filterThenForward(const router::CompiledRoute& compiled) {
  const std::optional<bool> answered = co_await runRequestFilters();
  if (answered) co_return *answered;
  co_return co_await forward(compiled);
}

RequestPipeline::EarlyAnswer RequestPipeline::routeRequest(const router::CompiledRoute*& compiled) {
  beginRequest();
  w_.stats.requests.add();
  const std::string* incoming_id = req_.headers.find("x-request-id");
  if (incoming_id && isAcceptableRequestId(*incoming_id)) {
    ctx_.request_id.assign(*incoming_id);
  } else {
    generateRequestId(ctx_.request_id);
    if (incoming_id) req_.headers.remove("x-request-id");
  }
  if (pinned_snapshot_) {
    snapshot_ = pinned_snapshot_;
  } else {
    snapshot_ = w_.snapshot;
    if (w_.candidate) pickReleaseSide();
  }
  calls_.begin(snapshot_, &ctx_);
  if (snapshot_->tracer) startTrace();
  const snapshot::Snapshot& snap = *snapshot_;
  if (!applyClientCertificate()) {
    createFilters(snap.global_filters);
    return {401, "client certificate not trusted", !skipBufferedBody()};
  }

  if (req_.framing == http::BodyFraming::ContentLength &&
      req_.content_length > limits_.max_body_bytes) {
    createFilters(snap.global_filters);
    return {413, "request body too large", true};
  }

  router::RequestView view{req_.host, req_.method, req_.path, req_.query, &req_.headers};
  router::MatchResult match = (matcher_ ? matcher_ : snap.matcher.get())->match(view);
  if (match.kind != router::MatchResult::Kind::Matched) {
    createFilters(snap.global_filters);
    const bool keep = skipBufferedBody();
    if (match.kind == router::MatchResult::Kind::MethodNotAllowed) {
      allow_ = std::move(match.allow);
      return {405, "method not allowed", !keep};
    }
    return {404, "no route matched", !keep};
  }
  compiled = match.route;
  route_ = &snap.routes[match.route->index];
  // The worker's table belongs to the snapshot just taken; a reload later in the request must
  // not shift the count to another route.
  route_stats_ = w_.routeStatsOf(snap, match.route->index);
  if (route_stats_) route_stats_->started.add();
  ctx_.route_name = route_->cfg->name;
  ctx_.path_params = std::move(match.params);
  createFilters(route_->filters);
  if (replay_) {  // the filters before the replaying one ran for the client's request
    if (ctx_.route_name != replay_->route || replay_->from_filter >= filters_.size()) {
      filters_ran_ = filters_.size();
      return {500, "the replayed request matches another route", true};
    }
    filters_ran_ = first_filter_ = replay_->from_filter;
    ctx_.consumer = replay_->consumer;
    ctx_.authenticated = replay_->authenticated;
    ctx_.anonymous = replay_->anonymous;
    ctx_.replay = true;
  }
  return {};
}

Task<std::optional<bool>> RequestPipeline::runRequestFilters() {
  // Request phase: filters in order; one may answer locally or go asynchronous. Auth filters
  // may refuse with AuthFailed: with auth_mode `any` the refusal waits, since a later auth
  // filter may still accept the request; it is decided before the first non-auth filter.
  const bool auth_any = route_->cfg->auth_mode == config::RouteConfig::AuthMode::Any;
  bool refusal_pending = false;
  bool route_authenticates = false;  // consumer headers are only Portico's business then
  for (; filters_ran_ < filters_.size();) {
    ctx_.filter_index = filters_ran_;
    auto& filter = *filters_[filters_ran_++];
    const bool authenticates = filter.authenticates();
    route_authenticates |= authenticates;
    if (refusal_pending && !authenticates) {
      refusal_pending = false;
      if (!acceptAnonymous()) co_return co_await refuseRequest(std::move(pending_refusal_));
    }
    if (authenticates && auth_any && ctx_.authenticated) continue;  // one accepted already
    api::FilterStatus status = filter.onRequestHeaders(ctx_);
    if (status == api::FilterStatus::Async) {
      status = co_await awaitPhase([&](api::Filter::Completion done) {
        filter.onRequestHeadersAsync(ctx_, std::move(done));
      });
      if (client_gone_) {
        finish(499);
        co_return false;
      }
    }
    if (status == api::FilterStatus::AuthFailed) {
      if (auth_any) {
        if (!refusal_pending) {  // the first refusal is the one answered
          pending_refusal_ = std::move(ctx_.local_reply);
          pending_failure_ = ctx_.auth_failure;
        }
        refusal_pending = true;
        ctx_.local_reply = api::LocalReply{};
        continue;
      }
      if (acceptAnonymous()) continue;
      co_return co_await refuseRequest(std::move(ctx_.local_reply));
    }
    if (authenticates && status == api::FilterStatus::Continue && ctx_.authenticated) {
      refusal_pending = false;  // accepted: earlier refusals no longer count
      ctx_.auth_failure = api::AuthFailure::None;
      ctx_.error.clear();
    }
    if (status == api::FilterStatus::Reply) {
      countRefusal();
      bool keep = skipBufferedBody();
      co_return co_await replyLocal(!keep);
    }
  }
  if (refusal_pending && !ctx_.authenticated && !acceptAnonymous())
    co_return co_await refuseRequest(std::move(pending_refusal_));
  if (ctx_.max_body_bytes && ctx_.max_body_bytes < limits_.max_body_bytes) {
    // A route's own body limit (request-size-limit): chunked bodies are held to it as they
    // stream, like the listener's.
    limits_.max_body_bytes = ctx_.max_body_bytes;
    if (req_.framing == http::BodyFraming::ContentLength &&
        req_.content_length > limits_.max_body_bytes)
      co_return co_await replyError(413, "request body too large", true);
  }
  const auto& consumer_headers = snapshot_->config.consumer_headers;
  if (ctx_.consumer) {
    applyConsumerHeaders(consumer_headers);
  } else if (route_authenticates) {
    clearConsumerHeaders(consumer_headers);
  }
  co_return std::nullopt;
}

Task<bool> RequestPipeline::forward(const router::CompiledRoute& compiled) {
  if (route_->flow) co_return co_await runFlow();
  if (!route_->upstream) {
    bool keep = skipBufferedBody();
    co_return co_await replyError(500, "route has no upstream", !keep);
  }
  ctx_.upstream_name = route_->upstream->cfg->name;
  std::string& target = target_;
  target = router::rewritePath(*route_->cfg, compiled, req_.path, ctx_.path_params);
  if (!req_.query.empty()) {
    target += target.find('?') == std::string::npos ? '?' : '&';
    target += req_.query;
  }

  ExchangeHooks hooks;
  hooks.tunnel.idle = route_->cfg->websocket_idle_timeout.count() > 0
                          ? route_->cfg->websocket_idle_timeout
                          : limits_.idle_timeout;
  hooks.tunnel.max_duration = route_->cfg->websocket_max_duration;
  hooks.preserve_host = route_->cfg->preserve_host;
  if (grpc_) {
    if (const std::string* t = req_.headers.find("grpc-timeout")) {
      if (auto timeout = grpc::parseTimeout(*t))
        hooks.deadline = std::chrono::duration_cast<Clock::duration>(*timeout);
    }
  }
  if (!filters_.empty()) {
    hooks.response_head = [this] {
      resp_next_ = filters_ran_;
      return runResponseFilters();
    };
    hooks.response_head_async = [this] { return finishResponseFilters(); };
    hooks.request_body = [this](std::string_view chunk, bool end) {
      for (auto& f : filters_) f->onRequestBody(ctx_, chunk, end);
    };
    hooks.response_transforms = &ctx_.response_transforms;
  }
  if (!ctx_.request_transforms.empty() && req_.framing != http::BodyFraming::None) {
    const std::optional<bool> answered = co_await readWholeBody();
    if (answered) co_return *answered;
    hooks.request_body_replaced = &request_body_;
  }
  ctx_.forward_target = target;
  if (req_.framing == http::BodyFraming::None)  // the body is "complete" before it starts
    for (auto& f : filters_) f->onRequestBody(ctx_, {}, true);
  detail::Exchange exchange(*this, *route_->upstream, req_, target, ctx_, hooks, scratch_);
  ExchangeResult r = co_await exchange.run();
  if (!r.responded) {
    if (r.status == 0) {  // the client went away; nothing can be answered
      finish(499);
      co_return false;
    }
    // A body transform that failed before anything left: its error answer is not transformed.
    if (r.upstream_ok) skip_transforms_ = true;
    co_return co_await replyError(r.status, r.error, !r.keep_client);
  }
  finish(r.status);
  co_return r.keep_client;
}

Task<bool> RequestPipeline::runFlow() {
  const flow::Flow& flow = *route_->flow;
  bool body_read = false;
  request_body_.clear();
  // Read when a template uses it or a filter transforms or checks it (request-validation).
  if ((flow.needs_request_body || !ctx_.request_transforms.empty()) &&
      req_.framing != http::BodyFraming::None) {
    limits_.max_body_bytes = std::min<std::uint64_t>(limits_.max_body_bytes, flow.max_buffer);
    if (auto answered = co_await readWholeBody()) co_return *answered;
    body_read = true;
  }
  for (auto& f : filters_) f->onRequestBody(ctx_, request_body_, true);
  flow::FlowRun run(flow, ctx_, std::move(request_body_),
                    snapshot_->config.server.limits.max_calls_per_request);
  co_await awaitPhase([&](api::Filter::Completion done) {
    run.start([done = std::move(done)] { done(api::FilterStatus::Continue); });
  });
  if (client_gone_) {
    finish(499);
    co_return false;
  }
  // A body the flow read is consumed; one it did not need is skipped.
  const bool keep = body_read || skipBufferedBody();
  if (run.failed) co_return co_await replyError(run.status, run.error, !keep);
  ctx_.local_reply.status = run.status;
  ctx_.local_reply.headers = std::move(run.headers);
  ctx_.local_reply.body = std::move(run.body);
  co_return co_await replyLocal(!keep);
}

// Authentication failed: the route's anonymous consumer, if it names one, takes the request.
bool RequestPipeline::acceptAnonymous() {
  if (!route_->anonymous) return false;
  ctx_.consumer = route_->anonymous;
  ctx_.anonymous = true;
  ctx_.auth_failure = api::AuthFailure::None;
  ctx_.error.clear();
  ctx_.local_reply = api::LocalReply{};
  return true;
}

Task<bool> RequestPipeline::refuseRequest(api::LocalReply reply) {
  if (pending_failure_ != api::AuthFailure::None) ctx_.auth_failure = pending_failure_;
  ctx_.local_reply = std::move(reply);
  countRefusal();
  bool keep = skipBufferedBody();
  co_return co_await replyLocal(!keep);
}

void RequestPipeline::countRefusal() {
  const auto why = static_cast<std::size_t>(ctx_.auth_failure);
  if (why == 0 || !route_stats_ || why >= route_stats_->auth_failures.size()) return;
  route_stats_->auth_failures[why].add();
}

// Portico's to set: whatever the client sent under these names never reaches the upstream.
void RequestPipeline::clearConsumerHeaders(const config::ConsumerHeaders& names) {
  for (const std::string* n : {&names.name, &names.groups, &names.custom_id, &names.anonymous})
    if (!n->empty()) req_.headers.remove(*n);
}

void RequestPipeline::applyConsumerHeaders(const config::ConsumerHeaders& names) {
  clearConsumerHeaders(names);
  const api::Consumer& c = *ctx_.consumer;
  if (!names.name.empty()) req_.headers.add(names.name, c.name);
  if (!names.groups.empty() && !c.groups_joined.empty())
    req_.headers.add(names.groups, c.groups_joined);
  if (!names.custom_id.empty() && !c.custom_id.empty())
    req_.headers.add(names.custom_id, c.custom_id);
  if (!names.anonymous.empty() && ctx_.anonymous) req_.headers.add(names.anonymous, "true");
}

// The identity headers of a TLS listener are Portico's to set: whatever the client sent under
// those names is dropped, and the verified identity (if any) takes its place. Returns false
// when an optional client certificate was presented and did not verify.
bool RequestPipeline::applyClientCertificate() {
  if (!conn_.tls || !conn_.tls->config().client_auth) return true;
  const auto& auth = *conn_.tls->config().client_auth;
  const auto& peer = conn_.peer;
  if (!auth.subject_header.empty()) req_.headers.remove(auth.subject_header);
  if (!auth.san_header.empty()) req_.headers.remove(auth.san_header);
  if (peer.presented && !peer.verified) return false;
  if (peer.verified) {
    if (!auth.subject_header.empty()) req_.headers.add(auth.subject_header, peer.subject);
    if (!auth.san_header.empty()) req_.headers.add(auth.san_header, peer.sans);
  }
  return true;
}

bool RequestPipeline::runResponseFilters() {
  ctx_.response = &resp_;
  while (resp_next_ > first_filter_) {
    api::Filter& f = *filters_[--resp_next_];
    if (f.onResponseHeaders(ctx_) == api::FilterStatus::Async) {
      async_response_ = &f;
      return true;
    }
  }
  return false;
}

Task<void> RequestPipeline::finishResponseFilters() {
  while (api::Filter* f = std::exchange(async_response_, nullptr)) {
    const api::FilterStatus status = co_await awaitPhase(
        [&](api::Filter::Completion done) { f->onResponseHeadersAsync(ctx_, std::move(done)); });
    // Only a failed phase ends with Reply here (a response filter may not reply): the filter
    // threw, or its call's callback did. The response it was to shape does not leave; the
    // request ends as after any exception, with a 500 while nothing of it has.
    if (status == api::FilterStatus::Reply)
      throw std::runtime_error("a response filter's asynchronous phase failed");
    runResponseFilters();
  }
}

Task<api::FilterStatus> RequestPipeline::awaitPhase(
    const std::function<void(api::Filter::Completion)>& start) {
  awaiting_phase_ = true;
  asio::use_awaitable_t<Executor> token;
  const api::FilterStatus status =
      co_await asio::async_initiate<asio::use_awaitable_t<Executor>, void(api::FilterStatus)>(
          [&](auto handler) {
            // The filter calls the completion exactly once (its contract), maybe at once, maybe
            // on another thread: the request always resumes from its loop. The handler is
            // owned by the completion, then by the posted function (freed even if the loop
            // stops first). A filter that throws instead fails the phase; the first of the two
            // to complete it counts.
            using Handler = decltype(handler);
            struct Pending {
              std::optional<Handler> handler;
              std::atomic<bool> completed{false};
            };
            auto pending = std::make_shared<Pending>(std::move(handler));
            auto complete = [pending, io = &w_.io](api::FilterStatus s) {
              if (pending->completed.exchange(true)) return;
              asio::post(*io, [pending, s]() { std::move (*pending->handler)(s); });
            };
            fail_phase_ = [this, complete] {
              setErrorReply(500, "a filter failed");
              complete(api::FilterStatus::Reply);
            };
            try {
              start(complete);
            } catch (const std::exception& e) {
              spdlog::error("request {}: a filter's asynchronous phase ended by an exception: {}",
                            ctx_.request_id, e.what());
              fail_phase_();
            }
          },
          token);
  fail_phase_ = nullptr;
  awaiting_phase_ = false;
  co_return status;
}

void RequestPipeline::clientGone() {
  if (client_gone_) return;
  client_gone_ = true;
  calls_.abortAll();
}

Task<std::optional<bool>> RequestPipeline::readWholeBody() {
  const int refused = co_await transformRequestBody();
  if (refused == 0) co_return std::nullopt;
  if (refused == 499) {
    finish(499);
    co_return false;
  }
  if (ctx_.local_reply_set) {  // the transform wrote the answer itself (a validator's report)
    filters_ran_ = filters_.size();
    co_return co_await replyLocal(true);
  }
  co_return co_await replyError(refused, ctx_.error, true);
}

Task<int> RequestPipeline::transformRequestBody() {
  request_body_.clear();
  IoBuffer& in = clientBuffer();
  if (req_.expect_continue) {
    const bool sent = co_await sendContinue();
    if (!sent) co_return 499;
  }
  http::ChunkedDecoder decoder;
  std::uint64_t remaining = req_.content_length;
  if (req_.framing == http::BodyFraming::ContentLength &&
      req_.content_length <= limits_.max_body_bytes)
    expectBodyLength(ctx_.request_transforms, req_.content_length);
  std::uint64_t total = 0;
  std::string error;
  bool transformed = true;
  for (;;) {
    std::size_t take = 0;
    bool done = false;
    auto payload = [&](std::string_view data) {
      total += data.size();
      if (transformed && total <= limits_.max_body_bytes)
        transformed = runTransforms(ctx_.request_transforms, data, false, request_body_, error,
                                    ctx_.request_id, "request");
    };
    const std::string_view avail = in.readable();
    if (req_.framing == http::BodyFraming::Chunked) {
      const auto step = decoder.feed(avail, payload);
      if (step.status == http::ChunkedDecoder::Status::Error) {
        ctx_.error = "invalid chunked body";
        co_return 400;
      }
      take = step.consumed;
      done = step.status == http::ChunkedDecoder::Status::Done;
    } else {
      take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, avail.size()));
      remaining -= take;
      done = remaining == 0;
      payload(avail.substr(0, take));
    }
    in.consume(take);
    ctx_.bytes_received = total;
    if (total > limits_.max_body_bytes) {
      ctx_.error = "request body too large";
      co_return 413;
    }
    if (done) break;
    boost::system::error_code ec;
    armOp(limits_.idle_timeout);
    const std::size_t n = co_await readClient(asio::buffer(in.writePtr(), in.writable()), ec);
    disarmOp();
    if (ec || n == 0) co_return 499;
    in.commit(n);
  }
  if (transformed)
    transformed = runTransforms(ctx_.request_transforms, {}, true, request_body_, error,
                                ctx_.request_id, "request");
  if (!transformed) {
    ctx_.error = error;
    co_return error == "request body too large for transformation" ? 413 : 400;
  }
  req_.framing = http::BodyFraming::ContentLength;
  req_.content_length = request_body_.size();
  req_.expect_continue = false;
  co_return 0;
}

bool RequestPipeline::transformLocalBody(std::string& body) {
  std::string out;
  if (!runTransforms(ctx_.response_transforms, body, true, out, scratch_.transform_error,
                     ctx_.request_id, "response"))
    return false;
  body = std::move(out);
  return true;
}

Task<bool> RequestPipeline::replyError(int status, std::string_view reason, bool close,
                                       std::string_view allow) {
  setErrorReply(status, reason, allow);
  filters_ran_ = filters_.size();
  co_return co_await replyLocal(close);
}

Task<void> RequestPipeline::answerAfterException(bool response_started) {
  calls_.end();
  if (response_started) co_return;
  setErrorReply(500, "internal error");
  filters_ran_ = first_filter_;
  skip_transforms_ = true;
  co_await replyLocal(true);
}

void RequestPipeline::setErrorReply(int status, std::string_view reason, std::string_view allow) {
  ctx_.error = std::string(reason);
  reason = ctx_.error;  // `reason` may have pointed into the old ctx_.error
  ctx_.local_reply = api::LocalReply{};
  if (grpc_) {
    // A gRPC client reads errors from grpc-status, not from the HTTP status: a trailers-only
    // response (HTTP 200, status and message in the head, no body).
    ctx_.local_reply.status = 200;
    ctx_.local_reply.headers.add("content-type", "application/grpc");
    ctx_.local_reply.headers.add("grpc-status", std::to_string(grpc::statusForHttp(status)));
    ctx_.local_reply.headers.add("grpc-message", grpc::encodeMessage(reason));
  } else {
    ctx_.local_reply.status = status;
    ctx_.local_reply.headers.add("Content-Type", "application/json");
    if (!allow.empty()) ctx_.local_reply.headers.add("Allow", allow);
    ctx_.local_reply.body = errorBody(status, reason, ctx_.request_id);
  }
}

Task<bool> RequestPipeline::replyLocal(bool close) {
  resp_.clear();
  resp_.status = ctx_.local_reply.status;
  resp_.headers = std::move(ctx_.local_reply.headers);
  if (!resp_.headers.has("x-request-id")) resp_.headers.add("X-Request-Id", ctx_.request_id);
  std::string body = std::move(ctx_.local_reply.body);
  std::shared_ptr<const std::string> shared = std::move(ctx_.local_reply.shared_body);
  resp_.framing = http::BodyFraming::ContentLength;
  resp_.content_length = shared ? shared->size() : body.size();
  resp_next_ = filters_ran_;
  if (runResponseFilters()) co_await finishResponseFilters();
  if (!skip_transforms_ && !ctx_.response_transforms.empty() && resp_.status >= 200 &&
      resp_.status != 204 && resp_.status != 304) {
    if (shared) body = *std::exchange(shared, nullptr);  // transformed: a copy of its own
    // The same transforms as a proxied body; the reply's whole body is known, so its length is.
    prepareTransformedHead(resp_, ctx_.response_transforms);
    if (!transformLocalBody(body)) {
      skip_transforms_ = true;  // the error answer itself is not transformed
      co_return co_await replyError(502, scratch_.transform_error, close);
    }
    resp_.framing = http::BodyFraming::ContentLength;
    resp_.content_length = body.size();
  }
  const bool keep = co_await writeLocalReply(shared ? *shared : body, close);
  finish(resp_.status);
  co_return keep;
}

void RequestPipeline::startTrace() {
  // Parent-based sampling: a caller's decision is followed; a new trace is kept with the
  // configured ratio. An unsampled request is forwarded with its traceparent untouched.
  auto& t = ctx_.trace;
  const std::string* incoming = req_.headers.find("traceparent");
  if (incoming && observability::parseTraceparent(*incoming, t)) {
    if (!t.sampled) return;
  } else {
    t.reset();
    const double ratio = snapshot_->tracer->config().sampling;
    if (ratio <= 0 || static_cast<double>(w_.trace_rng.next() >> 11) * 0x1.0p-53 >= ratio) {
      if (incoming) req_.headers.remove("traceparent");  // malformed: not forwarded
      return;
    }
    t.trace_hi = w_.spanId();
    t.trace_lo = w_.spanId();
    t.sampled = true;
  }
  t.span = w_.spanId();
  // Until an upstream attempt names its own span, the upstream's parent is the server span.
  req_.headers.set("traceparent", observability::formatTraceparent(t, t.span, true));
}

void RequestPipeline::finishTrace() {
  auto& t = ctx_.trace;
  observability::FinishedTrace done;
  done.trace_hi = t.trace_hi;
  done.trace_lo = t.trace_lo;
  api::Span server;
  server.id = t.span;
  server.parent = t.parent;
  server.kind = 2;
  server.name = ctx_.route_name.empty() ? ctx_.original_method
                                        : ctx_.original_method + " " + std::string(ctx_.route_name);
  server.start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(ctx_.wall_start.time_since_epoch())
          .count();
  server.end_ns = server.start_ns +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(ctx_.total_latency).count();
  server.error = ctx_.status >= 500 || ctx_.status == 0;
  server.attr("http.request.method", ctx_.original_method);
  server.attr("url.path", ctx_.original_path);
  server.attr("http.response.status_code", static_cast<std::int64_t>(ctx_.status));
  if (!ctx_.route_name.empty()) server.attr("http.route", std::string(ctx_.route_name));
  server.attr("client.address", ctx_.client_ip);
  server.attr("portico.request_id", ctx_.request_id);
  if (ctx_.consumer) server.attr("portico.consumer", ctx_.consumer->name);
  if (!ctx_.error.empty()) server.attr("portico.error", ctx_.error);
  done.spans.reserve(1 + t.children.size());
  done.spans.push_back(std::move(server));
  for (auto& c : t.children) done.spans.push_back(std::move(c));
  t.children.clear();
  snapshot_->tracer->submit(std::move(done));
}

void RequestPipeline::finish(int status) {
  calls_.end();  // a call still running is no longer wanted
  ctx_.status = status;
  ctx_.total_latency = w_.time.steady() - ctx_.start;
  if (route_ && route_stats_) {
    auto cls = static_cast<std::size_t>(status / 100);
    route_stats_->by_class[cls < 6 ? cls : 0].add();
    route_stats_->duration.observe(ctx_.total_latency);
    route_stats_->bytes_in.add(ctx_.bytes_received);
    route_stats_->bytes_out.add(ctx_.bytes_sent);
    if (ctx_.upstream_attempts > 0 && route_->upstream) {
      auto& up = w_.upstreamStatsOf(*route_->upstream);
      up.bytes_in.add(ctx_.bytes_received);
      up.bytes_out.add(ctx_.bytes_sent);
    }
  }
  if (release_side_ >= 0) w_.stats.release_sides[release_side_].record(status, ctx_.total_latency);
  // The table's indexes are the stable snapshot's: a request on another one is not counted there.
  if (ctx_.consumer && snapshot_ == w_.snapshot &&
      ctx_.consumer->index < w_.consumer_stats.size()) {
    auto& c = *w_.consumer_stats[ctx_.consumer->index];
    c.requests.add();
    if (status >= 400 && ctx_.upstream_attempts == 0) c.rejections.add();
  }
  if (status >= 400 || status == 0) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.wall_start.time_since_epoch());
    w_.stats.recent_errors.record(ms.count(), status, ctx_.original_method, ctx_.original_path,
                                  ctx_.route_name, ctx_.request_id, ctx_.error);
  }
  for (auto& f : filters_) f->onLog(ctx_);
  if (ctx_.trace.sampled && snapshot_ && snapshot_->tracer) finishTrace();
}

}  // namespace portico::proxy
