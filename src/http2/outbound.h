#pragma once
// What the server and client codecs share: a stream's outgoing body queue (fed by the proxy,
// drained by nghttp2 as flow control allows, then trailers) and the frame output buffer.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "http/header_list.h"

namespace portico::http2::detail {

// nghttp2 copies names and values (NGHTTP2_NV_FLAG_NONE).
nghttp2_nv makeNv(std::string_view name, std::string_view value);

// The request id is new in every message: in HPACK's dynamic table it would only churn. Worse,
// nghttp2's encoder files every entry of one name in one hash bucket, so each such entry
// lengthens a chain that lookups walk for every message of the connection (measured:
// docs/performance.md, session 21). Sent as a literal never indexed.
inline void markIfNeverIndexed(const http::Header& field, nghttp2_nv& nv) {
  if (field.id == http::HeaderId::XRequestId) nv.flags |= NGHTTP2_NV_FLAG_NO_INDEX;
}

class Outbound {
 public:
  // Queues body bytes; `end` ends the body (with trailers when set first).
  void queue(nghttp2_session* session, std::int32_t stream, std::string_view data, bool end);
  void setTrailers(const http::HeaderList& trailers) {
    has_trailers_ = true;
    trailers_ = trailers;
  }
  std::size_t pending() const { return pending_.size() - pos_; }
  // Back to empty for another stream, keeping the buffers' capacity.
  void reset() {
    pending_.clear();
    pos_ = 0;
    ended_ = has_trailers_ = deferred_ = false;
    trailers_.clear();
  }
  // The nghttp2 data source callback.
  static ssize_t read(nghttp2_session* session, std::int32_t stream, std::uint8_t* buf,
                      std::size_t length, std::uint32_t* flags, Outbound& out);

 private:
  std::string pending_;
  std::size_t pos_ = 0;
  bool ended_ = false;
  bool has_trailers_ = false;
  bool deferred_ = false;
  http::HeaderList trailers_;
};

// Frames serialised by nghttp2, waiting to be written.
class FrameOutput {
 public:
  std::string_view fill(nghttp2_session* session);
  void consume(std::size_t n) { pos_ = std::min(out_.size(), pos_ + n); }

 private:
  std::string out_;
  std::size_t pos_ = 0;
};

// What both codecs make their nghttp2 session with: `Callbacks`' receive hooks and no
// automatic WINDOW_UPDATE (the consumer opens the window as bytes leave); each side adds its
// own before creating the session. Freed when it goes out of scope (nghttp2 copies both).
template <class Callbacks>
struct SessionSetup {
  SessionSetup() {
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::onData);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::onStreamClose);
    nghttp2_option_new(&options);
    nghttp2_option_set_no_auto_window_update(options, 1);
  }
  ~SessionSetup() {
    nghttp2_option_del(options);
    nghttp2_session_callbacks_del(callbacks);
  }
  SessionSetup(const SessionSetup&) = delete;
  SessionSetup& operator=(const SessionSetup&) = delete;

  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* options = nullptr;
};

}  // namespace portico::http2::detail
