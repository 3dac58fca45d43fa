#include "proxy/http_session.h"

#include <sys/socket.h>

#include <cerrno>
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
#include "proxy/http2_connection.h"
#include "proxy/message_writer.h"
#include "proxy/request_pipeline.h"

namespace portico::proxy {
namespace {

using boost::system::error_code;

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

// What a connection keeps of its listener's config: copied when it is accepted, since the
// snapshot may be replaced before the session's coroutine first runs.
struct ListenerSettings {
  tcp::endpoint peer;  // the client's address, as accept() returned it
  std::shared_ptr<const tls::ServerContext> tls;
  config::Http2Config http2;
  std::string address;
  observability::ListenerStats* stats = nullptr;  // per worker; lives as long as the worker
};

class HttpSession final : public SessionBase, public RequestPipeline {
 public:
  HttpSession(WorkerContext& w, Socket socket, ListenerSettings listener)
      : RequestPipeline(w, conn_info_),
        http2_(listener.http2),
        listener_address_(std::move(listener.address)),
        client_(std::move(socket)) {
    conn_info_.tls = std::move(listener.tls);
    w_.add(this);
    w_.stats.connections_accepted.add();
    w_.stats.connections_active.add();
    listener_stats_ = listener.stats;
    if (listener_stats_) {
      listener_stats_->accepted.add();
      listener_stats_->active.add();
    }
    // The peer's address came with accept(), and TCP_NODELAY from the listener
    // (server::openListener): no getpeername or setsockopt per connection.
    conn_info_.client_ip = listener.peer.address().to_string();
    conn_info_.client_port = listener.peer.port();
    error_code ec;
    if (!conn_info_.tls) client_.non_blocking(true, ec);  // for writeNow (plain sockets only)
  }

  ~HttpSession() override {
    in_.clear();
    in_.park(w_.buffers);  // for the next connection: no 16 KiB malloc per connection
    w_.remove(this);
    w_.stats.connections_active.sub();
    if (listener_stats_) listener_stats_->active.sub();
  }

  Task<void> run();

  void checkDeadline(Clock::time_point now) override {
    if (h2_) {
      h2_->checkDeadline(now);
    } else {
      RequestPipeline::checkDeadline(now);
      // Nobody reads the socket while a filter awaits a call: look whether the client closed.
      if (awaitingPhase() && peerClosed()) {
        clientGone();
      } else if (idle_ && readUnsure() && now - idle_since_ >= kHiddenFinLookAfter) {
        // The request's short read may have hidden a FIN behind it (a client that half-closed
        // after sending): no epoll edge will come for it, so look once.
        read_unsure_ = false;
        if (tls_) tls_->lookedForHiddenFin();
        if (peerClosed()) cancelRead();
      }
    }
  }

  void onDrain() override {
    if (h2_) {
      h2_->onDrain();
    } else if (idle_) {
      error_code ec;
      client_.cancel(ec);
    }
  }

  bool readUnsure() const { return tls_ ? tls_->readUnsure() : read_unsure_; }

  // The client closed its side (EOF or an error; pipelined bytes do not count). TLS peers send
  // close_notify first, which reads as data: those are found when the phase ends.
  bool peerClosed() {
    char c;
    const ssize_t n = ::recv(client_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  Socket& client() override { return client_; }
  TlsStream* clientTls() override { return tls_ ? &*tls_ : nullptr; }
  IoBuffer& clientBuffer() override { return in_; }
  Task<std::size_t> readClient(asio::mutable_buffer space, error_code& ec) override {
    return readMore(client_, clientTls(), space, read_unsure_, ec);
  }
  Task<bool> sendContinue() override;
  void cancelRead() override {
    error_code ec;
    client_.cancel(ec);
  }

 private:
  void cancelClientIo() override {
    error_code ec;
    client_.cancel(ec);
  }
  bool skipBufferedBody() override;
  Task<bool> writeLocalReply(const std::string& body, bool close) override;
  std::string_view protocol() const override {
    return req_.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }
  Task<bool> handshake();
  // Serves the rest of the connection as HTTP/2, starting with what was read already.
  Task<void> runHttp2(std::string_view received);
  // The first bytes are the HTTP/2 preface (or, so far, a prefix of it).
  bool startsHttp2Preface() const;

  ConnectionInfo conn_info_;  // RequestPipeline keeps a reference: set up before any request
  config::Http2Config http2_;
  std::string listener_address_;
  observability::ListenerStats* listener_stats_ = nullptr;
  std::unique_ptr<Http2Connection> h2_;
  bool first_request_ = true;
  Socket client_;
  IoBuffer in_;
  std::optional<TlsStream> tls_;
  std::string& out_ = scratch_.out;
  bool idle_ = true;
  // The last read of a plain client socket was short, so a FIN may wait unseen behind it
  // (readParked): the next read looks at once (readMore), an idle wait is looked at after
  // kHiddenFinLookAfter (checkDeadline). TLS keeps its own (readUnsure()).
  bool read_unsure_ = false;
  static constexpr auto kHiddenFinLookAfter = std::chrono::milliseconds(100);
  Clock::time_point idle_since_{};
};

Task<bool> HttpSession::handshake() {
  tls_.emplace(client_, conn_info_.tls->context());
  armOp(w_.snapshot->config.server.limits.header_timeout);
  error_code ec;
  co_await tls_->handshake(true, ec);
  disarmOp();
  if (ec) {
    w_.stats.tls_handshake_failures.add();
    co_return false;
  }
  w_.stats.tls_handshakes.add();
  conn_info_.peer = tls::peerIdentity(tls_->native_handle());
  co_return true;
}

Task<void> HttpSession::run() {
  error_code ec;
  bool handshaken = true;
  if (conn_info_.tls) handshaken = co_await handshake();
  if (!handshaken) {
    client_.close(ec);
    co_return;
  }
  if (conn_info_.peer.alpn == "h2") {
    co_await runHttp2({});
    co_return;
  }
  for (;;) {
    // Limits come from the snapshot current when each request starts.
    loadLimits();
    const auto& lim = w_.snapshot->config.server.limits;
    const auto header_timeout = lim.header_timeout;

    bool started = !in_.empty();
    idle_ = !started;
    idle_since_ = w_.time.coarseSteady();
    if (w_.draining && !started) break;
    // Waiting for the next request: the buffer goes back to the worker's pool meanwhile.
    if (!started) in_.park(w_.buffers);
    armOp(started ? header_timeout : lim.idle_timeout);
    http::ParseResult pr;
    std::size_t scanned = 0;
    bool first_line_seen = false;
    bool http2 = false;
    for (;;) {
      if (first_request_ && !in_.empty() && startsHttp2Preface()) {
        http2 = in_.size() >= Http2Connection::kPreface.size();
        if (http2) break;
      } else if (!in_.empty()) {
        // Parse when the head may be complete, or once to refuse an over-long first line
        // early (414/431). Never on every read: a dribbled head must not cost quadratic time.
        // Also once when the request line completes: a line without an HTTP version
        // (HTTP/0.9 style) or otherwise malformed is refused at once, not at the header timeout.
        const bool long_first_line = !first_line_seen && in_.size() > limits_.head.max_uri_bytes;
        const bool line_complete =
            !first_line_seen && in_.readable().find('\n') != std::string_view::npos;
        if (mayHoldHead(in_.readable(), scanned) || long_first_line || line_complete) {
          pr = http::parseRequestHead(in_.readable(), limits_.head, req_);
          if (pr.status != http::ParseStatus::Incomplete) break;
        }
        first_line_seen |= line_complete;
      }
      scanned = in_.size();
      std::size_t n = 0;
      if (in_.parked()) {
        n = co_await readParked(client_, clientTls(), in_, w_.buffers, ec, &read_unsure_);
      } else {
        if (in_.writable() == 0) {
          if (in_.capacity() >= limits_.head.max_header_bytes + 4096) {
            pr.status = http::ParseStatus::Error;
            pr.error_status = 431;
            pr.error = "header too large";
            break;
          }
          in_.reserve(limits_.head.max_header_bytes + 4096);
        }
        n = co_await readMore(client_, clientTls(), asio::buffer(in_.writePtr(), in_.writable()),
                              read_unsure_, ec);
      }
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
    if (http2) {
      co_await runHttp2(in_.readable());
      co_return;
    }
    first_request_ = false;
    if (pr.status == http::ParseStatus::Error) {
      w_.stats.bad_requests.add();
      beginRequest();
      generateRequestId(ctx_.request_id);
      createFilters(w_.snapshot->global_filters);
      co_await replyError(pr.error_status, pr.error, true);
      break;
    }
    in_.consume(pr.consumed);
    // An exception (a bug) ends this request, not silently: a JSON 500 when nothing of the
    // response has left yet, then the connection closes.
    bool keep = false;
    bool threw = false;
    try {
      keep = co_await handleRequest();
    } catch (const std::exception& e) {
      spdlog::error("request {}: ended by an exception: {}", ctx_.request_id, e.what());
      threw = true;
    }
    if (threw) co_await answerAfterException(ctx_.bytes_sent != 0);
    endRequest();
    if (threw || !keep || w_.draining) break;
  }
  client_.shutdown(Socket::shutdown_send, ec);
  client_.close(ec);
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

bool HttpSession::startsHttp2Preface() const {
  if (conn_info_.tls || !http2_.enabled) return false;
  std::string_view got = in_.readable();
  std::string_view preface = Http2Connection::kPreface;
  return preface.substr(0, std::min(got.size(), preface.size())) ==
         got.substr(0, std::min(got.size(), preface.size()));
}

Task<void> HttpSession::runHttp2(std::string_view received) {
  h2_ = std::make_unique<Http2Connection>(w_, client_, clientTls(), conn_info_, http2_,
                                          listener_address_);
  idle_ = false;
  // HTTP/2 reads into buffers of its own: this one goes back to the pool once the bytes read
  // so far (the preface and what came with it) are copied out.
  const std::string first(received);
  in_.clear();
  in_.park(w_.buffers);
  co_await h2_->run(first);
  h2_.reset();
  error_code ec;
  client_.shutdown(Socket::shutdown_send, ec);
  client_.close(ec);
}

Task<bool> HttpSession::writeLocalReply(const std::string& body, bool close) {
  const bool head = req_.method == "HEAD";
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
  std::size_t n = co_await writeJoined(client_, clientTls(), buffers, scratch_.joined, ec);
  disarmOp();
  ctx_.bytes_sent += n;
  co_return keep && !ec;
}

Task<bool> HttpSession::sendContinue() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  armOp(limits_.idle_timeout);
  error_code ec;
  co_await writeAll(client_, clientTls(), asio::buffer(kContinue), ec);
  disarmOp();
  co_return !ec;
}

Task<void> runSession(WorkerContext& worker, Socket socket, ListenerSettings listener) {
  HttpSession session(worker, std::move(socket), std::move(listener));
  try {
    co_await session.run();
  } catch (const std::exception& e) {
    // A bug must not take the worker down; the connection just closes, and the bug is logged.
    spdlog::error("session ended by an exception: {}", e.what());
  }
}

}  // namespace

void startHttpSession(WorkerContext& worker, Socket socket, const tcp::endpoint& peer,
                      const snapshot::Listener* listener) {
  ListenerSettings settings;
  settings.peer = peer;
  if (listener) {
    settings.tls = listener->tls;
    settings.http2 = listener->cfg->http2;
    settings.address = listener->cfg->listen;
    settings.stats = &worker.stats.listener(listener->cfg->name);
  } else {
    settings.http2.enabled = false;
  }
  asio::co_spawn(worker.io.get_executor(),
                 runSession(worker, std::move(socket), std::move(settings)), asio::detached);
}

}  // namespace portico::proxy
