#include "proxy/http_session.h"

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/spdlog.h>

#include "core/request_id.h"
#include "http/codec/chunked_decoder.h"
#include "http/codec/head_parser.h"
#include "proxy/message_writer.h"
#include "proxy/upstream_exchange.h"

namespace portico::proxy {
namespace {

using boost::system::error_code;

constexpr auto kNever = Clock::time_point::max();

// True when `data` may hold a whole head: it has an empty line (or a bare-LF one, so that the
// parser can refuse it). Avoids reparsing a slowly arriving head on every read.
bool mayHoldHead(std::string_view data, std::size_t from) {
  from = from > 3 ? from - 3 : 0;
  for (std::size_t i = data.find('\n', from); i != std::string_view::npos;
       i = data.find('\n', i + 1)) {
    if (i + 1 < data.size() && data[i + 1] == '\n') return true;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') return true;
  }
  return false;
}

class HttpSession final : public SessionBase, public SessionIo {
 public:
  HttpSession(WorkerContext& w, Socket socket, std::shared_ptr<const tls::ServerContext> tls)
      : w_(w), client_(std::move(socket)), in_(16 * 1024), tls_ctx_(std::move(tls)) {
    w_.add(this);
    w_.stats.connections_accepted.add();
    w_.stats.connections_active.add();
    error_code ec;
    auto ep = client_.remote_endpoint(ec);
    if (!ec) {
      client_ip_ = ep.address().to_string();
      client_port_ = ep.port();
    }
    client_.set_option(tcp::no_delay(true), ec);
    if (!tls_ctx_) client_.non_blocking(true, ec);  // for writeNow (plain sockets only)
  }

  ~HttpSession() override {
    w_.remove(this);
    w_.stats.connections_active.sub();
  }

  Task<void> run();

  void checkDeadline(Clock::time_point now) override {
    if (now >= op_deadline_) {
      op_deadline_ = kNever;
      timed_out_ = true;
      cancelIo();
    }
    if (now >= total_deadline_) {
      total_deadline_ = kNever;
      total_expired_ = true;
      cancelIo();
    }
  }

  void onDrain() override {
    if (idle_) {
      error_code ec;
      client_.cancel(ec);
    }
  }

  WorkerContext& worker() override { return w_; }
  Socket& client() override { return client_; }
  TlsStream* clientTls() override { return tls_ ? &*tls_ : nullptr; }
  IoBuffer& clientBuffer() override { return in_; }
  void armOp(Clock::duration d) override {
    timed_out_ = false;
    op_deadline_ = d.count() > 0 ? coarseNow() + d : kNever;
  }
  void disarmOp() override {
    op_deadline_ = kNever;
    timed_out_ = false;
  }
  bool opTimedOut() const override { return timed_out_; }
  bool totalExpired() const override { return total_expired_; }
  void setTotalDeadline(Clock::duration d) override {
    total_deadline_ = d.count() > 0 ? coarseNow() + d : kNever;
    total_expired_ = false;
  }
  void setUpstreamSocket(Socket* s) override { upstream_socket_ = s; }
  const RequestLimits& limits() const override { return limits_; }

 private:
  void cancelIo() {
    error_code ec;
    client_.cancel(ec);
    if (upstream_socket_) upstream_socket_->cancel(ec);
  }

  void beginRequest();
  // Instances of these filters for this request (global ones for requests answered before
  // routing, so that their response and log phases still run).
  void createFilters(const server::FilterFactories& factories) {
    for (const auto& f : factories) filters_.push_back(f->create());
  }
  Task<bool> handleRequest();
  Task<bool> replyError(int status, std::string_view reason, bool close,
                        std::string_view allow = {});
  Task<bool> replyLocal(bool close);
  void runResponseFilters();
  void finish(int status);
  bool skipBufferedBody();

  Task<bool> handshake();
  bool applyClientCertificate();

  WorkerContext& w_;
  Socket client_;
  IoBuffer in_;
  std::shared_ptr<const tls::ServerContext> tls_ctx_;
  std::optional<TlsStream> tls_;
  tls::PeerIdentity peer_;
  std::string client_ip_;
  std::uint16_t client_port_ = 0;
  RequestLimits limits_;

  http::RequestHead req_;
  ExchangeScratch scratch_;
  http::ResponseHead& resp_ = scratch_.response;
  api::RequestContext ctx_;
  std::shared_ptr<const server::Snapshot> snapshot_;
  const server::Route* route_ = nullptr;
  std::size_t route_index_ = 0;
  observability::RouteStats* route_stats_ = nullptr;
  std::vector<std::unique_ptr<api::Filter>> filters_;
  std::size_t filters_ran_ = 0;
  std::string& out_ = scratch_.out;
  std::string target_;

  bool idle_ = true;
  bool timed_out_ = false;
  bool total_expired_ = false;
  Clock::time_point op_deadline_ = kNever;
  Clock::time_point total_deadline_ = kNever;
  Socket* upstream_socket_ = nullptr;
};

Task<bool> HttpSession::handshake() {
  tls_.emplace(client_, tls_ctx_->context());
  armOp(w_.snapshot->config.server.limits.header_timeout);
  error_code ec;
  co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                 asio::redirect_error(kUseAwaitable, ec));
  disarmOp();
  if (ec) {
    w_.stats.tls_handshake_failures.add();
    co_return false;
  }
  w_.stats.tls_handshakes.add();
  peer_ = tls::peerIdentity(tls_->native_handle());
  co_return true;
}

Task<void> HttpSession::run() {
  error_code ec;
  if (tls_ctx_ && !co_await handshake()) {
    client_.close(ec);
    co_return;
  }
  for (;;) {
    // Limits come from the snapshot current when each request starts.
    const auto& lim = w_.snapshot->config.server.limits;
    limits_.head.max_header_bytes = lim.max_header_bytes;
    limits_.head.max_headers = lim.max_headers;
    limits_.head.max_uri_bytes = lim.max_uri_bytes;
    limits_.max_body_bytes = lim.max_body_bytes;
    limits_.idle_timeout = lim.idle_timeout;
    const auto header_timeout = lim.header_timeout;

    bool started = !in_.empty();
    idle_ = !started;
    if (w_.draining && !started) break;
    armOp(started ? header_timeout : lim.idle_timeout);
    http::ParseResult pr;
    std::size_t scanned = 0;
    bool first_line_seen = false;
    for (;;) {
      if (!in_.empty()) {
        // Parse when the head may be complete, or once to refuse an over-long first line
        // early (414/431). Never on every read: a dribbled head must not cost quadratic time.
        const bool long_first_line = !first_line_seen && in_.size() > limits_.head.max_uri_bytes;
        if (mayHoldHead(in_.readable(), scanned) || long_first_line) {
          pr = http::parseRequestHead(in_.readable(), limits_.head, req_);
          if (pr.status != http::ParseStatus::Incomplete) break;
        }
        if (!first_line_seen && in_.readable().find('\n') != std::string_view::npos)
          first_line_seen = true;
      }
      scanned = in_.size();
      if (in_.writable() == 0) {
        if (in_.capacity() >= limits_.head.max_header_bytes + 4096) {
          pr.status = http::ParseStatus::Error;
          pr.error_status = 431;
          pr.error = "header too large";
          break;
        }
        in_.reserve(limits_.head.max_header_bytes + 4096);
      }
      std::size_t n =
          co_await readSome(client_, clientTls(), asio::buffer(in_.writePtr(), in_.writable()), ec);
      if (ec || n == 0) {
        if (timed_out_ && started) {
          disarmOp();
          beginRequest();
          generateRequestId(ctx_.request_id);
          co_await replyError(408, "request header timeout", true);
        }
        co_return;
      }
      in_.commit(n);
      if (!started) {
        started = true;
        idle_ = false;
        armOp(header_timeout);
      }
    }
    disarmOp();
    idle_ = false;
    if (pr.status == http::ParseStatus::Error) {
      w_.stats.bad_requests.add();
      beginRequest();
      generateRequestId(ctx_.request_id);
      createFilters(w_.snapshot->global_filters);
      co_await replyError(pr.error_status, pr.error, true);
      break;
    }
    in_.consume(pr.consumed);
    bool keep = co_await handleRequest();
    snapshot_.reset();
    filters_.clear();
    route_ = nullptr;
    if (!keep || w_.draining) break;
  }
  client_.shutdown(Socket::shutdown_send, ec);
  client_.close(ec);
}

void HttpSession::beginRequest() {
  ctx_.reset();
  ctx_.request = &req_;
  ctx_.start = Clock::now();
  ctx_.wall_start = w_.wallTime(ctx_.start);
  ctx_.client_ip = client_ip_;
  ctx_.client_port = client_port_;
  ctx_.secure = tls_.has_value();
  if (peer_.verified) {
    ctx_.tls_client_subject = peer_.subject;
    ctx_.tls_client_sans = peer_.sans;
  }
  ctx_.original_method.assign(req_.method);
  ctx_.original_path.assign(req_.target);
  filters_.clear();
  filters_ran_ = 0;
  route_ = nullptr;
  route_stats_ = nullptr;
}

Task<bool> HttpSession::handleRequest() {
  beginRequest();
  w_.stats.requests.add();
  const std::string* incoming_id = req_.headers.find("x-request-id");
  if (incoming_id && isAcceptableRequestId(*incoming_id)) {
    ctx_.request_id.assign(*incoming_id);
  } else {
    generateRequestId(ctx_.request_id);
    if (incoming_id) req_.headers.remove("x-request-id");
  }
  snapshot_ = w_.snapshot;
  const server::Snapshot& snap = *snapshot_;
  if (!applyClientCertificate()) {
    createFilters(snap.global_filters);
    co_return co_await replyError(401, "client certificate not trusted", !skipBufferedBody());
  }

  if (req_.framing == http::BodyFraming::ContentLength &&
      req_.content_length > limits_.max_body_bytes) {
    createFilters(snap.global_filters);
    co_return co_await replyError(413, "request body too large", true);
  }

  router::RequestView view{req_.host, req_.method, req_.path, req_.query, &req_.headers};
  router::MatchResult match = snap.matcher->match(view);
  if (match.kind != router::MatchResult::Kind::Matched) {
    createFilters(snap.global_filters);
    bool keep = skipBufferedBody();
    if (match.kind == router::MatchResult::Kind::MethodNotAllowed)
      co_return co_await replyError(405, "method not allowed", !keep, match.allow);
    co_return co_await replyError(404, "no route matched", !keep);
  }
  route_index_ = match.route->index;
  route_ = &snap.routes[route_index_];
  // The worker's table belongs to the snapshot just taken; a reload later in the request must
  // not shift the count to another route.
  route_stats_ = w_.route_stats[route_index_];
  ctx_.route_name = route_->cfg->name;
  ctx_.path_params = std::move(match.params);
  createFilters(route_->filters);

  // Request phase: filters in order; one may answer locally or go asynchronous.
  for (; filters_ran_ < filters_.size();) {
    auto& filter = *filters_[filters_ran_++];
    api::FilterStatus status = filter.onRequestHeaders(ctx_);
    if (status == api::FilterStatus::Async) {
      asio::use_awaitable_t<Executor> token;
      status =
          co_await asio::async_initiate<asio::use_awaitable_t<Executor>, void(api::FilterStatus)>(
              [&](auto handler) {
                auto shared = std::make_shared<decltype(handler)>(std::move(handler));
                // Always resume from the loop, even if the filter completes at once.
                filter.onRequestHeadersAsync(
                    ctx_, [shared, ex = w_.io.get_executor()](api::FilterStatus s) {
                      asio::post(ex, [shared, s] { (*shared)(s); });
                    });
              },
              token);
    }
    if (status == api::FilterStatus::Reply) {
      bool keep = skipBufferedBody();
      co_return co_await replyLocal(!keep);
    }
  }

  if (!route_->upstream) {
    bool keep = skipBufferedBody();
    co_return co_await replyError(500, "route has no upstream", !keep);
  }
  ctx_.upstream_name = route_->upstream->cfg->name;
  std::string& target = target_;
  target = router::rewritePath(*route_->cfg, *match.route, req_.path, ctx_.path_params);
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
  if (!filters_.empty()) hooks.response_head = [this] { runResponseFilters(); };
  if (!filters_.empty()) {
    hooks.request_body = [this](std::string_view chunk) {
      for (auto& f : filters_) f->onRequestBody(ctx_, chunk);
    };
    hooks.response_body = [this](std::string_view chunk) {
      for (auto it = filters_.rbegin(); it != filters_.rend(); ++it)
        (*it)->onResponseBody(ctx_, chunk);
    };
  }
  ExchangeResult r =
      co_await exchangeWithUpstream(*this, *route_->upstream, req_, target, ctx_, hooks, scratch_);
  if (!r.responded) {
    if (r.status == 0) {  // the client went away; nothing can be answered
      finish(499);
      co_return false;
    }
    co_return co_await replyError(r.status, r.error, !r.keep_client);
  }
  finish(r.status);
  co_return r.keep_client;
}

// The identity headers of a TLS listener are Portico's to set: whatever the client sent under
// those names is dropped, and the verified identity (if any) takes its place. Returns false
// when an optional client certificate was presented and did not verify.
bool HttpSession::applyClientCertificate() {
  if (!tls_ctx_ || !tls_ctx_->config().client_auth) return true;
  const auto& auth = *tls_ctx_->config().client_auth;
  if (!auth.subject_header.empty()) req_.headers.remove(auth.subject_header);
  if (!auth.san_header.empty()) req_.headers.remove(auth.san_header);
  if (peer_.presented && !peer_.verified) return false;
  if (peer_.verified) {
    if (!auth.subject_header.empty()) req_.headers.add(auth.subject_header, peer_.subject);
    if (!auth.san_header.empty()) req_.headers.add(auth.san_header, peer_.sans);
  }
  return true;
}

void HttpSession::runResponseFilters() {
  ctx_.response = &resp_;
  for (std::size_t i = filters_ran_; i-- > 0;) filters_[i]->onResponseHeaders(ctx_);
}

bool HttpSession::skipBufferedBody() {
  switch (req_.framing) {
    case http::BodyFraming::None:
      return true;
    case http::BodyFraming::ContentLength:
      if (in_.size() >= req_.content_length) {
        in_.consume(req_.content_length);
        return true;
      }
      return false;
    case http::BodyFraming::Chunked: {
      http::ChunkedDecoder decoder;
      auto step = decoder.feed(in_.readable(), [](std::string_view) {});
      if (step.status == http::ChunkedDecoder::Status::Done) {
        in_.consume(step.consumed);
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

Task<bool> HttpSession::replyError(int status, std::string_view reason, bool close,
                                   std::string_view allow) {
  ctx_.error = std::string(reason);
  ctx_.local_reply = api::LocalReply{};
  ctx_.local_reply.status = status;
  ctx_.local_reply.headers.add("Content-Type", "application/json");
  if (!allow.empty()) ctx_.local_reply.headers.add("Allow", allow);
  ctx_.local_reply.body = errorBody(status, reason, ctx_.request_id);
  filters_ran_ = filters_.size();
  co_return co_await replyLocal(close);
}

Task<bool> HttpSession::replyLocal(bool close) {
  resp_.clear();
  resp_.status = ctx_.local_reply.status;
  resp_.headers = std::move(ctx_.local_reply.headers);
  if (!resp_.headers.has("x-request-id")) resp_.headers.add("X-Request-Id", ctx_.request_id);
  const bool head = req_.method == "HEAD";
  std::string body = std::move(ctx_.local_reply.body);
  resp_.framing = http::BodyFraming::ContentLength;
  resp_.content_length = body.size();
  runResponseFilters();
  const bool keep = !close && req_.keep_alive && !w_.draining;
  ResponseFraming framing;
  framing.keep_alive = keep;
  framing.client_version_minor = req_.version_minor;
  out_.clear();
  writeResponseHead(out_, resp_, framing);
  std::array<asio::const_buffer, 2> buffers{asio::buffer(out_),
                                            asio::buffer(body.data(), head ? 0 : body.size())};
  armOp(limits_.idle_timeout);
  error_code ec;
  std::size_t n = co_await writeAll(client_, clientTls(), buffers, ec);
  disarmOp();
  ctx_.bytes_sent += n;
  finish(resp_.status);
  co_return keep && !ec;
}

void HttpSession::finish(int status) {
  ctx_.status = status;
  ctx_.total_latency = Clock::now() - ctx_.start;
  if (route_ && route_stats_) {
    auto cls = static_cast<std::size_t>(status / 100);
    route_stats_->by_class[cls < 6 ? cls : 0].add();
  }
  for (auto& f : filters_) f->onLog(ctx_);
}

Task<void> runSession(WorkerContext& worker, Socket socket,
                      std::shared_ptr<const tls::ServerContext> tls) {
  HttpSession session(worker, std::move(socket), std::move(tls));
  try {
    co_await session.run();
  } catch (const std::exception& e) {
    // A bug must not take the worker down; the connection just closes, and the bug is logged.
    spdlog::error("session ended by an exception: {}", e.what());
  }
}

}  // namespace

void startHttpSession(WorkerContext& worker, Socket socket,
                      std::shared_ptr<const tls::ServerContext> tls) {
  asio::co_spawn(worker.io.get_executor(), runSession(worker, std::move(socket), std::move(tls)),
                 asio::detached);
}

}  // namespace portico::proxy
