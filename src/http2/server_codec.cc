#include "http2/server_codec.h"

#include "http/codec/message_head.h"
#include "http2/outbound.h"
#include "http2/session_memory.h"

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstring>

namespace portico::http2 {

using detail::makeNv;

struct ServerCodec::Stream {
  Request request;
  std::size_t header_bytes = 0;
  detail::Outbound body;  // response body not yet taken by nghttp2
  // The response head, which nghttp2 references (NO_COPY) until it has encoded it. The stream
  // object is reused only after nghttp2 closed the stream; a HEADERS frame still queued for a
  // closed stream is dropped before its fields are read (nghttp2's send predicates).
  http::HeaderList response;
  std::array<char, 3> status{};
  bool responded = false;  // a second response head would take the fields from under the first
};

struct Callbacks {
  using Stream = ServerCodec::Stream;

  // CONTINUATION floods (CVE-2024-27316 and kin): a header block spread over more frames than
  // any honest client needs ends the connection, whatever the frames hold.
  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    auto& c = ServerCodec::self(user);
    if (hd->type == NGHTTP2_HEADERS) {
      c.continuations_ = 0;
    } else if (hd->type == NGHTTP2_CONTINUATION &&
               ++c.continuations_ > c.limits_.max_continuations) {
      ++c.stats_.continuation_floods;
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = ServerCodec::self(user);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      c.openStream(frame->hd.stream_id);
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& c = ServerCodec::self(user);
    Stream* found = c.find(frame->hd.stream_id);
    if (!found) return 0;
    auto& s = *found;
    // HPACK bombs: the decoded size is bounded per stream, whatever the compression ratio.
    s.header_bytes += namelen + valuelen + 32;
    if (s.header_bytes > c.limits_.max_header_list_bytes) {
      ++c.stats_.streams_refused;
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets this stream only
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers: not forwarded yet
    if (n == ":method") {
      s.request.method.assign(v);
    } else if (n == ":scheme") {
      s.request.scheme.assign(v);
    } else if (n == ":authority") {
      s.request.authority.assign(v);
    } else if (n == ":path") {
      s.request.path.assign(v);
    } else if (n == ":protocol") {
      s.request.protocol.assign(v);
    } else if (const http::HeaderId id = http::classifyHeader(n); id == http::HeaderId::Cookie) {
      // A client may split Cookie into one field per pair so that HPACK indexes each; the
      // request goes on as HTTP/1.1, where a second Cookie field is not allowed (RFC 6265
      // §5.4) and servers read only the first, so the crumbs are joined (RFC 9113 §8.2.3).
      s.request.headers.addOrJoin(n, v, id, "; ");
    } else {
      s.request.headers.add(n, v, id);
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = ServerCodec::self(user);
    const std::int32_t id = frame->hd.stream_id;
    const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        Stream* s = c.find(id);
        if (!s) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          c.handler_.onRequest(id, s->request, end);
        } else if (end) {
          c.handler_.onRequestEnd(id);  // after trailers
        }
        return 0;
      }
      case NGHTTP2_DATA:
        if (end && c.find(id)) c.handler_.onRequestEnd(id);
        return 0;
      case NGHTTP2_RST_STREAM: {
        ++c.stats_.resets_received;
        c.reset_times_.push_back(c.now_);
        while (!c.reset_times_.empty() && c.now_ - c.reset_times_.front() > std::chrono::seconds(1))
          c.reset_times_.pop_front();
        if (c.reset_times_.size() > c.limits_.max_resets_per_second) {
          c.stats_.rapid_reset = true;
          nghttp2_session_terminate_session(c.session_, NGHTTP2_ENHANCE_YOUR_CALM);
        }
        return 0;
      }
      default:
        return 0;
    }
  }

  static int onData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user) {
    auto& c = ServerCodec::self(user);
    if (c.find(stream_id))
      c.handler_.onRequestData(stream_id,
                               std::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    auto& c = ServerCodec::self(user);
    std::unique_ptr<Stream> closed;
    if (!c.streams_.erase(stream_id, &closed)) return 0;
    if (c.last_id_ == stream_id) c.last_ = nullptr;
    if (c.spare_.size() < 64) c.spare_.push_back(std::move(closed));
    c.handler_.onStreamClosed(stream_id, error_code);
    return 0;
  }

  static ssize_t readBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    auto& c = ServerCodec::self(user);
    Stream* s = c.find(stream_id);
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return detail::Outbound::read(session, stream_id, buf, length, flags, s->body);
  }
};

ServerCodec::Stream* ServerCodec::find(std::int32_t id) const {
  if (last_ && last_id_ == id) return last_;
  const std::unique_ptr<Stream>* s = streams_.find(id);
  if (!s) return nullptr;
  last_id_ = id;
  last_ = s->get();
  return last_;
}

void ServerCodec::openStream(std::int32_t id) {
  if (spare_.empty()) {
    last_ = streams_.insert(id, std::make_unique<Stream>()).get();
    last_id_ = id;
    return;
  }
  std::unique_ptr<Stream> reused = std::move(spare_.back());
  spare_.pop_back();
  Stream& s = *reused;
  Request& r = s.request;
  r.method.clear();
  r.scheme.clear();
  r.authority.clear();
  r.path.clear();
  r.protocol.clear();
  r.headers.clear();
  s.header_bytes = 0;
  s.responded = false;
  s.body.reset();
  last_ = streams_.insert(id, std::move(reused)).get();
  last_id_ = id;
}

ServerCodec::ServerCodec(Handler& handler, Limits limits) : handler_(handler), limits_(limits) {
  {
    const detail::SessionSetup<Callbacks> setup;
    nghttp2_session_callbacks_set_on_begin_frame_callback(setup.callbacks, Callbacks::onBeginFrame);
    nghttp2_option_set_max_outbound_ack(setup.options, limits_.max_outbound_ack);
    nghttp2_option_set_max_settings(setup.options, limits_.max_settings_per_frame);
    nghttp2_session_server_new3(&session_, setup.callbacks, this, setup.options,
                                detail::sessionMemory());
  }

  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.initial_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, limits_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_bytes},
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},  // WebSocket over HTTP/2 (RFC 8441)
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(limits_.connection_window));
}

ServerCodec::~ServerCodec() {
  nghttp2_session_del(session_);
}

bool ServerCodec::receive(std::string_view bytes, Clock::time_point now) {
  now_ = now;
  if (failed_) return false;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size());
  if (n < 0) {
    // Protocol errors, floods: nghttp2 queues a GOAWAY where it can; close after sending.
    failed_ = true;
    if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return !stats_.rapid_reset;
}

void ServerCodec::consume(std::int32_t stream, std::size_t bytes) {
  nghttp2_session_consume(session_, stream, bytes);
}

bool ServerCodec::respond(std::int32_t stream, int status, http::HeaderList& headers,
                          bool end_stream) {
  Stream* found = find(stream);
  if (!found || status < 100 || status > 999 || found->responded) return false;
  Stream& s = *found;
  s.responded = true;
  s.response.swap(headers);
  s.status = http::statusDigits(status);
  constexpr std::uint8_t kReferenced = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  auto& nva = nva_;  // reused: no allocation per response once warm
  nva.clear();
  nva.push_back(makeNv(":status", std::string_view(s.status.data(), s.status.size())));
  nva.back().flags = kReferenced;
  for (const auto& h : s.response) {
    nva.push_back(makeNv(h.name, h.value));
    nva.back().flags = kReferenced;
    detail::markIfNeverIndexed(h, nva.back());
  }
  nghttp2_data_provider provider{};
  provider.read_callback = Callbacks::readBody;
  return nghttp2_submit_response(session_, stream, nva.data(), nva.size(),
                                 end_stream ? nullptr : &provider) == 0;
}

void ServerCodec::sendData(std::int32_t stream, std::string_view data, bool end_stream) {
  if (Stream* s = find(stream)) s->body.queue(session_, stream, data, end_stream);
}

void ServerCodec::sendTrailers(std::int32_t stream, const http::HeaderList& trailers) {
  Stream* s = find(stream);
  if (!s) return;
  s->body.setTrailers(trailers);
  s->body.queue(session_, stream, {}, true);
}

void ServerCodec::sendInterim(std::int32_t stream, int status) {
  const std::string code = std::to_string(status);
  nghttp2_nv nv = makeNv(":status", code);
  nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream, nullptr, &nv, 1, nullptr);
}

std::size_t ServerCodec::pendingBytes(std::int32_t stream) const {
  const Stream* s = find(stream);
  return s ? s->body.pending() : 0;
}

void ServerCodec::resetStream(std::int32_t stream, std::uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, error_code);
}

void ServerCodec::goAway() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

std::string_view ServerCodec::output() {
  return output_.fill(session_);
}

void ServerCodec::consumeOutput(std::size_t n) {
  output_.consume(n);
}

bool ServerCodec::wantsClose() const {
  return failed_ || stats_.rapid_reset ||
         (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
}

}  // namespace portico::http2
