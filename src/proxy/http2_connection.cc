#include "proxy/http2_connection.h"

#include <nghttp2/nghttp2.h>

#include <charconv>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include "core/base64.h"
#include "core/request_id.h"
#include "http/token.h"
#include "http/url.h"
#include "http2/server_codec.h"
#include "http2/stream_table.h"
#include "proxy/message_writer.h"
#include "proxy/wake_event.h"

namespace portico::proxy {
namespace {

using boost::system::error_code;

// A response waits while more than this is queued for its stream and not yet framed: the
// client's flow-control window decides how fast it drains.
constexpr std::size_t kStreamHighWater = 64 * 1024;
// How long a connection runs no stream before its spare stream objects go (trimSpares).
constexpr Clock::duration kSpareStreamsIdle = std::chrono::seconds(1);

http2::Limits codecLimits(const config::Http2Config& c) {
  http2::Limits l;
  l.max_concurrent_streams = c.max_concurrent_streams;
  l.initial_window = c.initial_window;
  l.connection_window = c.connection_window;
  l.max_frame_size = c.max_frame_size;
  l.max_header_list_bytes = c.max_header_list_bytes;
  l.max_resets_per_second = c.max_resets_per_second;
  return l;
}

bool sameHttp2Settings(const config::Http2Config& a, const config::Http2Config& b) {
  return a.enabled == b.enabled && a.max_concurrent_streams == b.max_concurrent_streams &&
         a.initial_window == b.initial_window && a.connection_window == b.connection_window &&
         a.max_frame_size == b.max_frame_size &&
         a.max_header_list_bytes == b.max_header_list_bytes &&
         a.max_resets_per_second == b.max_resets_per_second;
}

}  // namespace

class Http2Stream;

class Http2Connection::Impl final : public http2::ServerCodec::Handler {
 public:
  Impl(WorkerContext& w, Socket& socket, TlsStream* tls, const ConnectionInfo& conn,
       const config::Http2Config& cfg, std::string listener_address)
      : w(w),
        socket(socket),
        tls(tls),
        conn(conn),
        cfg(cfg),
        listener_address(std::move(listener_address)),
        codec(*this, codecLimits(cfg)),
        write_wake(w.io.get_executor()),
        done_wake(w.io.get_executor()),
        snapshot(w.snapshot.get()) {}

  Task<void> run(std::string_view received);
  Task<void> writer();
  void flush() { write_wake.wake(); }
  void checkDeadline(Clock::time_point now);
  void goAway();
  void streamFinished(std::int32_t id);
  void afterOutput();

  // ServerCodec::Handler
  void onRequest(std::int32_t id, http2::Request& request, bool end_stream) override;
  void onRequestData(std::int32_t id, std::string_view data) override;
  void onRequestEnd(std::int32_t id) override;
  void onStreamClosed(std::int32_t id, std::uint32_t error_code) override;

  WorkerContext& w;
  Socket& socket;
  TlsStream* tls;
  const ConnectionInfo& conn;
  config::Http2Config cfg;
  std::string listener_address;
  http2::ServerCodec codec;
  // Stream objects are owned by their coroutine (Http2Stream::serve), which serves one stream after
  // another: a finished object is parked in `spare` and woken for a new stream, so a stream
  // costs no coroutine launch; one not kept is dismissed and its coroutine ends.
  http2::StreamTable<Http2Stream*> streams;  // by stream id, until finished and closed
  std::vector<Http2Stream*> spare;           // finished stream objects, parked for reuse
  void retire(Http2Stream* s);
  std::size_t alive = 0;          // stream objects (each with its coroutine)
  std::size_t running = 0;        // stream pipelines not finished
  std::size_t drain_waiters = 0;  // streams waiting for their queued response to drain
  WakeEvent write_wake;           // wakes the writer
  WakeEvent done_wake;            // woken when the writer or the last pipeline ends
  bool closing = false;           // no more reads; the writer flushes and stops
  bool writer_done = false;
  bool going_away = false;
  Clock::time_point idle_deadline = Clock::time_point::max();
  const snapshot::Snapshot* snapshot;  // the one last checked for listener changes
  IoBuffer in;  // parked between reads: the codec takes what a read brought at once
  std::vector<asio::const_buffer> rest;
  // Since when no stream has run (the sweeper then lets the spare stream objects go).
  Clock::time_point idle_since = Clock::time_point::max();
  void trimSpares();
};

// One request on the connection. Its pipeline runs as a coroutine of its own; the connection
// feeds it body bytes and close events, and frames what it answers.
class Http2Stream final : public RequestPipeline, public ResponseStream {
 public:
  Http2Stream(Http2Connection::Impl& c, std::int32_t id, http2::Request& request, bool ended)
      : RequestPipeline(c.w, c.conn),
        c_(c),
        id_(id),
        ended_(ended),
        signal_(c.w.io.get_executor()),
        body_(0) {
    takeRequest(request);
  }

  // A finished stream object serves a new stream: its buffers keep their capacity.
  void reuse(std::int32_t id, http2::Request& request, bool ended) {
    id_ = id;
    takeRequest(request);
    ended_ = ended;
    closed_ = gone_ = end_sent_ = head_sent_ = waiting_drain_ = false;
    final_chunk_sent_ = read_cancelled_ = finished = false;
    body_.clear();
    queue_.clear();
    queue_pos_ = 0;
    disarmOp();
    setTotalDeadline({});
  }

  // The life of a stream object, in its own coroutine: the streams it serves, one after another
  // (given by reuse() and start()), until dismissed. It owns the object; the connection waits
  // for every such coroutine to end before it goes.
  static Task<void> serve(Http2Connection::Impl& c, std::unique_ptr<Http2Stream> stream);
  std::int32_t id() const { return id_; }

  void start() {
    assigned_ = true;
    wake();
  }
  void dismiss() {
    dismissed_ = true;
    wake();
  }

  void onData(std::string_view data) {
    if (finished) {  // nobody will read it: open the window at once
      c_.codec.consume(id_, data.size());
      return;
    }
    queue_.append(data);
    wake();
  }
  void onEnd() {
    ended_ = true;
    wake();
  }
  void onClosed() {
    closed_ = true;
    wake();
    if (awaitingPhase()) clientGone();  // reset by the client while a filter awaits a call
  }
  // The connection is gone: whatever the pipeline waits for fails now.
  void abandon() {
    gone_ = true;
    wake();
    checkDeadline(Clock::time_point::max());  // cancels the upstream socket too
    if (awaitingPhase()) clientGone();
  }
  void wake() { signal_.wake(); }
  bool waitingForDrain() const { return waiting_drain_; }
  bool finished = false;
  bool closed() const { return closed_; }

  // SessionIo
  Socket& client() override { return c_.socket; }
  TlsStream* clientTls() override { return c_.tls; }
  ResponseStream* responseStream() override { return this; }
  IoBuffer& clientBuffer() override { return body_; }
  Task<std::size_t> readClient(asio::mutable_buffer space, error_code& ec) override;
  Task<bool> sendContinue() override {
    if (!closed_ && !gone_) {
      c_.codec.sendInterim(id_, 100);
      c_.flush();
    }
    co_return !closed_ && !gone_;
  }

  void cancelRead() override {
    read_cancelled_ = true;
    wake();
  }

  // ResponseStream
  Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) override {
    co_return head(resp, end_stream);
  }
  Task<bool> sendData(std::string_view data, bool end_stream) override;
  Task<bool> sendTrailers(const http::HeaderList& fields) override { co_return trailers(fields); }
  std::optional<bool> sendHeadNow(const http::ResponseHead& resp, bool end_stream) override {
    return head(resp, end_stream);
  }
  std::optional<bool> sendDataNow(std::string_view data, bool end_stream) override;
  bool sendsAtOnce(std::size_t body_bytes) const override {
    return c_.codec.pendingBytes(id_) + body_bytes <= kStreamHighWater;
  }

 private:
  void cancelClientIo() override { wake(); }
  bool skipBufferedBody() override { return true; }  // the rest of the body is discarded
  Task<bool> writeLocalReply(const std::string& body, bool close) override;
  std::string_view protocol() const override { return "HTTP/2"; }

  // Takes what the codec decoded into the request head (the codec's object is reused when
  // the stream closes, possibly before the pipeline starts); buildRequest() completes it.
  // Swapped, not copied: the codec gets this head's cleared strings and header objects back,
  // with their capacity, for a later stream.
  void takeRequest(http2::Request& request) {
    req_.clear();
    req_.method.swap(request.method);
    req_.target.swap(request.path);
    req_.host.swap(request.authority);
    req_.headers.swap(request.headers);
    protocol_.swap(request.protocol);
  }
  Task<bool> answer();
  void afterAnswer();  // the stream's end, whatever the answer
  bool head(const http::ResponseHead& resp, bool end_stream);
  void queueData(std::string_view data, bool end_stream);
  bool trailers(const http::HeaderList& trailers);
  // Completes the request head; returns why it is refused (a 400), or nullptr.
  const char* buildRequest();
  std::size_t takeBody(asio::mutable_buffer space);
  Task<bool> wait();
  bool usable() const { return !closed_ && !gone_; }

  Http2Connection::Impl& c_;
  std::int32_t id_;
  std::string protocol_;  // :protocol of an extended CONNECT
  bool ended_;
  bool closed_ = false;
  bool gone_ = false;
  bool end_sent_ = false;
  bool head_sent_ = false;
  bool waiting_drain_ = false;
  bool final_chunk_sent_ = false;
  bool read_cancelled_ = false;
  bool extended_connect_ = false;
  bool assigned_ = false;   // a stream to serve next
  bool dismissed_ = false;  // the connection no longer needs this object
  WakeEvent signal_;
  IoBuffer body_;
  std::string queue_;  // body bytes received and not yet taken
  std::size_t queue_pos_ = 0;
  http::HeaderList fields_;
};

// ---- stream ----

const char* Http2Stream::buildRequest() {
  req_.version_minor = 1;
  req_.keep_alive = true;
  if (req_.target.empty() || req_.target.front() != '/') return "invalid request target";
  if (!http::isMethod(req_.method)) return "lower-case letters in method";  // as over HTTP/1.1
  extended_connect_ = false;
  if (req_.method == "CONNECT") {
    // Extended CONNECT (RFC 8441): a WebSocket on this stream. Upstream it is an HTTP/1.1
    // Upgrade, which needs a Sec-WebSocket-Key an HTTP/2 client does not send.
    if (!http::equalsIgnoreCase(protocol_, "websocket"))
      return "CONNECT without :protocol websocket";
    extended_connect_ = true;
    req_.method = "GET";
    req_.upgrade = "websocket";
    if (!req_.headers.has("sec-websocket-key")) {
      char key[16];
      for (int i = 0; i < 16; i += 8) {
        const std::uint64_t r = w_.rng.next();
        std::memcpy(key + i, &r, 8);
      }
      req_.headers.add("sec-websocket-key", base64Encode(std::string_view(key, sizeof key)));
    }
  }
  const auto q = req_.target.find('?');
  req_.path.assign(req_.target, 0, q);
  if (q != std::string::npos) req_.query.assign(req_.target, q + 1);
  // The path as HTTP/1.1's parser leaves it: visible ASCII (nghttp2 refuses controls, space and
  // DEL, not bytes from 0x80), no fragment, escapes of unreserved characters decoded, no dot
  // segment (`/public/../admin` would reach `/admin` behind a route on /public).
  for (const char c : req_.target)
    if (static_cast<unsigned char>(c) >= 0x80) return "invalid character in request target";
  if (req_.path.find('#') != std::string::npos) return "fragment in request target";
  const http::PathNormalization normalized = http::normalizePath(req_.path);
  if (normalized == http::PathNormalization::Changed)
    req_.target = q == std::string::npos ? req_.path : req_.path + "?" + req_.query;
  else if (normalized != http::PathNormalization::Unchanged)
    return http::refusalOf(normalized);
  if (!req_.host.empty()) {  // :authority
    http::toLower(req_.host);
    // It wins over a Host field (nghttp2 allows one), as an absolute-form target's host does in
    // HTTP/1.1: the upstream is told the host the request was routed by.
    if (req_.headers.has(http::HeaderId::Host))
      req_.headers.set("host", req_.host);
    else
      req_.headers.add("host", req_.host);
  } else if (const std::string* host = req_.headers.find(http::HeaderId::Host)) {
    req_.host = *host;
    http::toLower(req_.host);
  }
  if (const std::string* expect = req_.headers.find(http::HeaderId::Expect))
    req_.expect_continue = http::equalsIgnoreCase(*expect, "100-continue");

  if (!ended_ || queue_.size() > queue_pos_) body_.reserve(16 * 1024);  // a body to relay
  if (extended_connect_) {
    req_.framing = http::BodyFraming::None;  // the stream's DATA is the tunnel, not a body
    return nullptr;
  }
  // Body framing towards an HTTP/1 upstream: a body already complete goes with its length
  // (and can be replayed on a retry); one still arriving keeps the client's content-length,
  // or is chunked.
  const std::size_t queued = queue_.size() - queue_pos_;
  if (ended_) {
    if (queued == 0) {
      req_.framing = http::BodyFraming::None;
    } else {
      req_.framing = http::BodyFraming::ContentLength;
      req_.content_length = queued;
      if (queued <= limits_.max_body_bytes) {
        body_.reserve(queued);
        std::memcpy(body_.writePtr(), queue_.data() + queue_pos_, queued);
        body_.commit(queued);
        queue_.clear();
        queue_pos_ = 0;
        c_.codec.consume(id_, queued);
      }
    }
  } else if (const std::string* cl = req_.headers.find(http::HeaderId::ContentLength)) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec != std::errc() || p != cl->data() + cl->size()) return "invalid Content-Length";
    req_.framing = http::BodyFraming::ContentLength;
    req_.content_length = n;
  } else {
    req_.framing = http::BodyFraming::Chunked;
  }
  return nullptr;
}

// Not a coroutine: the pipeline's awaitable for this stream's request, which serve() awaits
// (no frame of its own per stream).
Task<bool> Http2Stream::answer() {
  loadLimits();
  // The request head's limits an HTTP/1.1 head is held to (its size is the codec's
  // max_header_list_bytes): a stream over them is refused as such a request is.
  const auto& lim = w_.snapshot->config.server.limits;
  int status = 400;
  std::string_view reason;  // every refusal below says its own
  if (req_.target.size() > lim.max_uri_bytes) {
    status = 414;
    reason = "URI too long";
  } else if (req_.headers.size() > lim.max_headers) {
    status = 431;
    reason = "too many headers";
  } else if (const char* refused = buildRequest()) {
    reason = refused;
  } else {
    return handleRequest();
  }
  beginRequest();
  generateRequestId(ctx_.request_id);
  w_.stats.bad_requests.add();
  createFilters(w_.snapshot->global_filters);
  return replyError(status, reason, true);
}

void Http2Stream::afterAnswer() {
  if (!end_sent_ && usable()) {
    // The response was cut short (or never started): the client must not take it as whole.
    c_.codec.resetStream(id_, head_sent_ ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_CANCEL);
    c_.flush();
  }
  endRequest();
  finished = true;
  // Body bytes nobody will read: give the window back.
  if (queue_.size() > queue_pos_) c_.codec.consume(id_, queue_.size() - queue_pos_);
  queue_.clear();
  queue_pos_ = 0;
  c_.flush();
}

// The waits and the answer are awaited here directly, not through coroutines of their own: a
// stream costs no frame beyond its pipeline's.
Task<void> Http2Stream::serve(Http2Connection::Impl& c, std::unique_ptr<Http2Stream> stream) {
  Http2Stream& s = *stream;
  error_code ec;
  for (;;) {
    while (!s.assigned_ && !s.dismissed_)
      co_await s.signal_.async_wait(asio::redirect_error(kUseAwaitable, ec));
    if (s.dismissed_) break;
    s.assigned_ = false;
    // An exception (a bug) ends this stream's request with a JSON 500 when its head has not
    // left yet, else with a reset; the connection and its other streams go on.
    bool threw = false;
    try {
      co_await s.answer();
    } catch (const std::exception& e) {
      spdlog::error("request {}: HTTP/2 stream ended by an exception: {}", s.ctx_.request_id,
                    e.what());
      threw = true;
    }
    if (threw) co_await s.answerAfterException(s.head_sent_ || !s.usable());
    s.afterAnswer();  // the stream is reset if its answer did not end
    c.streamFinished(s.id());
  }
  stream.reset();
  if (--c.alive == 0) c.done_wake.wake();
}

Task<bool> Http2Stream::wait() {
  error_code ec;
  co_await signal_.async_wait(asio::redirect_error(kUseAwaitable, ec));
  co_return !timed_out_ && !totalExpired();
}

std::size_t Http2Stream::takeBody(asio::mutable_buffer space) {
  char* out = static_cast<char*>(space.data());
  const std::size_t cap = space.size();
  std::size_t written = 0;
  std::size_t avail = queue_.size() - queue_pos_;
  std::size_t taken = 0;
  if (req_.framing != http::BodyFraming::Chunked) {
    taken = std::min(cap, avail);
    std::memcpy(out, queue_.data() + queue_pos_, taken);
    written = taken;
  } else {
    // Re-framed as chunks: "<hex size>\r\n<data>\r\n", then "0\r\n\r\n" at the end.
    if (avail > 0 && cap > 32) {
      taken = std::min(cap - 32, avail);
      int len = std::snprintf(out, 24, "%zx\r\n", taken);
      written = static_cast<std::size_t>(len);
      std::memcpy(out + written, queue_.data() + queue_pos_, taken);
      written += taken;
      std::memcpy(out + written, "\r\n", 2);
      written += 2;
    }
    if (ended_ && avail == taken && !final_chunk_sent_ && cap - written >= 5) {
      std::memcpy(out + written, "0\r\n\r\n", 5);
      written += 5;
      final_chunk_sent_ = true;
    }
  }
  queue_pos_ += taken;
  if (queue_pos_ == queue_.size()) {
    queue_.clear();
    queue_pos_ = 0;
  }
  if (taken) {
    c_.codec.consume(id_, taken);  // the client may send as much again
    c_.flush();
  }
  return written;
}

Task<std::size_t> Http2Stream::readClient(asio::mutable_buffer space, error_code& ec) {
  for (;;) {
    if (!usable()) {
      ec = asio::error::connection_reset;
      co_return 0;
    }
    if (read_cancelled_) {
      read_cancelled_ = false;
      ec = asio::error::operation_aborted;
      co_return 0;
    }
    const bool more_framing = req_.framing == http::BodyFraming::Chunked && !final_chunk_sent_;
    if (queue_.size() > queue_pos_ || (ended_ && more_framing)) break;
    if (ended_) {
      ec = asio::error::eof;
      co_return 0;
    }
    const bool woke = co_await wait();
    if (!woke) {
      ec = asio::error::timed_out;
      co_return 0;
    }
  }
  co_return takeBody(space);
}

bool Http2Stream::head(const http::ResponseHead& resp, bool end_stream) {
  if (!usable()) return false;
  writeHttp2ResponseFields(fields_, resp);
  if (!c_.codec.respond(id_, resp.status, fields_, end_stream)) return false;
  head_sent_ = true;
  end_sent_ = end_stream;
  c_.flush();
  return true;
}

// sendData without its wait: when what it queues stays within the high-water mark.
std::optional<bool> Http2Stream::sendDataNow(std::string_view data, bool end_stream) {
  if (!usable()) return false;
  if (!sendsAtOnce(data.size())) return std::nullopt;
  queueData(data, end_stream);
  return true;
}

void Http2Stream::queueData(std::string_view data, bool end_stream) {
  c_.codec.sendData(id_, data, end_stream);
  end_sent_ = end_sent_ || end_stream;
  c_.flush();
}

Task<bool> Http2Stream::sendData(std::string_view data, bool end_stream) {
  if (!usable()) co_return false;
  queueData(data, end_stream);
  while (c_.codec.pendingBytes(id_) > kStreamHighWater) {
    waiting_drain_ = true;
    ++c_.drain_waiters;
    const bool woke = co_await wait();
    waiting_drain_ = false;
    --c_.drain_waiters;
    if (!woke) {
      w_.stats.http2_stream_stalls.add();
      co_return false;
    }
    if (!usable()) co_return false;
  }
  co_return true;
}

bool Http2Stream::trailers(const http::HeaderList& trailers) {
  if (!usable()) return false;
  fields_.clear();
  for (const auto& t : trailers) fields_.addLowerCase(t.name, t.value, t.id);
  c_.codec.sendTrailers(id_, fields_);
  end_sent_ = true;
  c_.flush();
  return true;
}

Task<bool> Http2Stream::writeLocalReply(const std::string& body, bool) {
  const bool no_body = body.empty() || req_.method == "HEAD";
  if (!head(resp_, no_body)) co_return false;
  if (no_body) co_return true;
  armOp(limits_.idle_timeout);
  const bool sent = co_await sendData(body, true);
  disarmOp();
  ctx_.bytes_sent += body.size();
  co_return sent;
}

// ---- connection ----

void Http2Connection::Impl::onRequest(std::int32_t id, http2::Request& request, bool end_stream) {
  if (going_away) {  // after GOAWAY only streams it announced are served
    codec.resetStream(id, NGHTTP2_REFUSED_STREAM);
    return;
  }
  w.stats.http2_streams.add();
  Http2Stream* s;
  if (!spare.empty()) {
    s = spare.back();
    spare.pop_back();
    s->reuse(id, request, end_stream);
    s->start();
  } else {
    auto stream = std::make_unique<Http2Stream>(*this, id, request, end_stream);
    s = stream.get();
    s->start();
    ++alive;
    asio::co_spawn(w.io.get_executor(), Http2Stream::serve(*this, std::move(stream)),
                   asio::detached);
  }
  streams.insert(id, s);
  ++running;
  idle_deadline = idle_since = Clock::time_point::max();
}

void Http2Connection::Impl::retire(Http2Stream* s) {
  if (!closing && spare.size() < cfg.max_concurrent_streams && spare.size() < 64)
    spare.push_back(s);
  else
    s->dismiss();
}

void Http2Connection::Impl::onRequestData(std::int32_t id, std::string_view data) {
  Http2Stream** s = streams.find(id);
  if (!s) {
    codec.consume(id, data.size());
    return;
  }
  (*s)->onData(data);
}

void Http2Connection::Impl::onRequestEnd(std::int32_t id) {
  if (Http2Stream** s = streams.find(id)) (*s)->onEnd();
}

void Http2Connection::Impl::onStreamClosed(std::int32_t id, std::uint32_t) {
  Http2Stream** found = streams.find(id);
  if (!found) return;
  Http2Stream* s = *found;
  if (s->finished) {
    retire(s);
    streams.erase(id);
  } else {
    s->onClosed();
  }
}

void Http2Connection::Impl::streamFinished(std::int32_t id) {
  Http2Stream** found = streams.find(id);
  if (found && (*found)->closed()) {
    retire(*found);
    streams.erase(id);
  }
  if (--running == 0) {
    idle_since = w.time.coarseSteady();
    idle_deadline = idle_since + w.snapshot->config.server.limits.idle_timeout;
    done_wake.wake();
  }
  flush();
}

// After frames left: responses waiting for their queue to drain may go on, and a connection
// with nothing left to do (after GOAWAY) stops reading.
void Http2Connection::Impl::afterOutput() {
  if (drain_waiters > 0) {
    streams.forEach([&](std::int32_t id, Http2Stream* s) {
      if (s->waitingForDrain() && codec.pendingBytes(id) <= kStreamHighWater) s->wake();
    });
  }
  if (!closing && codec.wantsClose()) {
    closing = true;
    error_code ec;
    socket.cancel(ec);
  }
}

Task<void> Http2Connection::Impl::writer() {
  error_code ec;
  for (;;) {
    std::string_view out = codec.output();
    afterOutput();
    if (out.empty()) {
      if (closing && running == 0) break;
      co_await write_wake.async_wait(asio::redirect_error(kUseAwaitable, ec));
      // Let the handlers already queued (other streams' responses) add their frames first:
      // fewer, fuller writes (and TLS records).
      co_await asio::post(w.io.get_executor(), kUseAwaitable);
      continue;
    }
    std::size_t n = 0;
    if (tls) {
      if (tls->writeAtOnce(asio::buffer(out)))
        n = out.size();
      else
        n = co_await tls->write(asio::buffer(out), ec);
    } else {
      n = writeNow(socket, asio::buffer(out), rest, ec);
      if (!ec && !rest.empty()) n += co_await writeAll(socket, nullptr, rest, ec);
    }
    codec.consumeOutput(n);
    if (ec) {  // the peer is gone: reads fail too, and every stream is abandoned
      closing = true;
      socket.cancel(ec);
      break;
    }
  }
  writer_done = true;
  done_wake.wake();
}

void Http2Connection::Impl::goAway() {
  if (going_away) return;
  going_away = true;
  codec.goAway();
  flush();
}

// A connection idle for a moment keeps no spare stream objects (each holds a request
// pipeline, its buffers and its coroutine: ~3 KiB): a client that opened 100 streams at once
// and then went quiet would otherwise hold them as long as it stays connected. A busy
// connection reuses them; one that wakes up launches new ones.
void Http2Connection::Impl::trimSpares() {
  for (Http2Stream* s : spare) s->dismiss();
  spare.clear();
}

void Http2Connection::Impl::checkDeadline(Clock::time_point now) {
  streams.forEach([&](std::int32_t, Http2Stream* s) {
    if (!s->finished) s->checkDeadline(now);
  });
  if (running == 0 && !spare.empty() && now - idle_since >= kSpareStreamsIdle) trimSpares();
  if (now >= idle_deadline && running == 0) {
    idle_deadline = Clock::time_point::max();
    goAway();
  }
  // A reload that changed (or removed) this listener's HTTP/2 settings: clients reconnect to
  // get the new ones, after the streams in flight.
  if (w.snapshot.get() != snapshot) {
    snapshot = w.snapshot.get();
    const snapshot::Listener* l = snapshot->findListener(listener_address);
    if (!l || !sameHttp2Settings(l->cfg->http2, cfg)) goAway();
  }
}

Task<void> Http2Connection::Impl::run(std::string_view received) {
  w.stats.http2_connections.add();
  idle_deadline = w.time.coarseSteady() + w.snapshot->config.server.limits.idle_timeout;
  asio::co_spawn(w.io.get_executor(), writer(), asio::detached);
  bool ok = codec.receive(received, w.time.coarseSteady());
  flush();
  error_code ec;
  while (ok && !closing) {
    // The buffer is taken when bytes arrive and given back once the codec has them: an idle
    // connection holds none.
    std::size_t n = co_await readParked(socket, tls, in, w.buffers, ec);
    if (ec || n == 0) break;
    ok = codec.receive(std::string_view(in.writePtr(), n), w.time.coarseSteady());
    in.park(w.buffers);
    flush();
  }
  in.park(w.buffers);
  if (!ok) w.stats.http2_protocol_closes.add();
  closing = true;
  // Nothing more will arrive: streams still waiting for the client end now; those relaying a
  // response find their stream gone.
  if (!ok || !writer_done) {
    streams.forEach([](std::int32_t, Http2Stream* s) {
      if (!s->finished) s->abandon();
    });
  }
  while (running > 0 || !writer_done) {
    flush();
    co_await done_wake.async_wait(asio::redirect_error(kUseAwaitable, ec));
  }
  // Every pipeline is done: the stream objects (parked, or finished and never closed by the
  // peer) end their coroutines before the connection goes.
  streams.forEach([](std::int32_t, Http2Stream* s) { s->dismiss(); });
  streams.clear();
  trimSpares();
  while (alive > 0) co_await done_wake.async_wait(asio::redirect_error(kUseAwaitable, ec));
}

// ---- public face ----

Http2Connection::Http2Connection(WorkerContext& w, Socket& socket, TlsStream* tls,
                                 const ConnectionInfo& conn, const config::Http2Config& cfg,
                                 std::string listener_address)
    : impl_(std::make_unique<Impl>(w, socket, tls, conn, cfg, std::move(listener_address))) {}

Http2Connection::~Http2Connection() = default;

Task<void> Http2Connection::run(std::string_view received) {
  return impl_->run(received);
}

void Http2Connection::checkDeadline(Clock::time_point now) {
  impl_->checkDeadline(now);
}

void Http2Connection::onDrain() {
  impl_->goAway();
}

}  // namespace portico::proxy
