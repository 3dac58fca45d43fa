#include "http2/client_codec.h"

#include <charconv>
#include <vector>

#include "http2/session_memory.h"

namespace portico::http2 {

using detail::makeNv;

struct ClientCodec::Stream {
  int status = 0;
  bool head_done = false;  // the final response head was handed out
  std::size_t header_bytes = 0;
  http::HeaderList fields;
  detail::Outbound body;
};

struct ClientCodec::Callbacks {
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    std::unique_ptr<Stream>* s = c.streams_.find(frame->hd.stream_id);
    if (!s) return 0;
    (*s)->status = 0;
    (*s)->header_bytes = 0;
    (*s)->fields.clear();
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& c = self(user);
    std::unique_ptr<Stream>* found = c.streams_.find(frame->hd.stream_id);
    if (!found) return 0;
    auto& s = **found;
    s.header_bytes += namelen + valuelen + 32;
    if (s.header_bytes > c.limits_.max_header_list_bytes)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets this stream
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      std::from_chars(v.data(), v.data() + v.size(), s.status);
    } else if (!n.empty() && n.front() != ':') {
      s.fields.add(n, v);
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    const std::int32_t id = frame->hd.stream_id;
    std::unique_ptr<Stream>* found = c.streams_.find(id);
    if (!found) return 0;
    auto& s = **found;
    const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (!s.head_done) {
        if (s.status >= 100 && s.status < 200) return 0;  // interim: wait for the final one
        s.head_done = true;
        c.handler_.onResponseHead(id, s.status, std::move(s.fields));
      } else {
        c.handler_.onResponseTrailers(id, std::move(s.fields));
      }
      s.fields.clear();
    }
    if (end && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
      c.handler_.onResponseEnd(id);
    return 0;
  }

  static int onData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    auto& c = self(user);
    if (c.streams_.find(id))
      c.handler_.onResponseData(id, std::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    auto& c = self(user);
    if (c.streams_.erase(id)) c.handler_.onStreamClosed(id, error_code);
    return 0;
  }

  static ssize_t readBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    auto& c = self(user);
    std::unique_ptr<Stream>* s = c.streams_.find(id);
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return detail::Outbound::read(session, id, buf, length, flags, (*s)->body);
  }
};

ClientCodec::ClientCodec(Handler& handler, ClientLimits limits)
    : handler_(handler), limits_(limits) {
  {
    const detail::SessionSetup<Callbacks> setup;
    nghttp2_session_client_new3(&session_, setup.callbacks, this, setup.options,
                                detail::sessionMemory());
  }
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_bytes},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(limits_.connection_window));
}

ClientCodec::~ClientCodec() {
  nghttp2_session_del(session_);
}

std::int32_t ClientCodec::submitRequest(const http::HeaderList& fields, bool end_stream) {
  if (!canOpenStream()) return -1;
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (const auto& f : fields) {
    nva.push_back(makeNv(f.name, f.value));
    detail::markIfNeverIndexed(f, nva.back());
  }
  nghttp2_data_provider provider{};
  provider.read_callback = Callbacks::readBody;
  auto stream = std::make_unique<Stream>();
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                                 end_stream ? nullptr : &provider, nullptr);
  if (id < 0) return -1;
  streams_.insert(id, std::move(stream));
  return id;
}

void ClientCodec::sendData(std::int32_t stream, std::string_view data, bool end_stream) {
  if (std::unique_ptr<Stream>* s = streams_.find(stream))
    (*s)->body.queue(session_, stream, data, end_stream);
}

std::size_t ClientCodec::pendingBytes(std::int32_t stream) const {
  const std::unique_ptr<Stream>* s = streams_.find(stream);
  return s ? (*s)->body.pending() : 0;
}

void ClientCodec::consume(std::int32_t stream, std::size_t bytes) {
  nghttp2_session_consume(session_, stream, bytes);
}

void ClientCodec::resetStream(std::int32_t stream, std::uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, error_code);
}

bool ClientCodec::receive(std::string_view bytes) {
  if (failed_) return false;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size());
  if (n < 0) {
    failed_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return true;
}

std::string_view ClientCodec::output() {
  return output_.fill(session_);
}

bool ClientCodec::canOpenStream() const {
  if (failed_ || !nghttp2_session_want_read(session_)) return false;
  // No GOAWAY from the server, and room under its SETTINGS_MAX_CONCURRENT_STREAMS.
  if (nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) <=
      streams_.size())
    return false;
  return nghttp2_session_check_request_allowed(session_) != 0;
}

bool ClientCodec::wantsClose() const {
  return failed_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
}

}  // namespace portico::http2
