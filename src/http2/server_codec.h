#pragma once
// Sans-I/O HTTP/2 server side on nghttp2: bytes in, request events out; responses in, bytes
// out. The codec owns the protections a public listener needs: stream limits, header list size,
// flow control driven by the consumer (no unbounded buffering), and connection-level abuse
// limits (rapid reset, SETTINGS/PING floods) that end the connection with GOAWAY.
//
// proxy/http2_connection owns one codec per client connection.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/header_list.h"
#include "http2/outbound.h"
#include "http2/stream_table.h"

typedef struct nghttp2_session nghttp2_session;

namespace portico::http2 {

using Clock = std::chrono::steady_clock;

struct Limits {
  std::uint32_t max_concurrent_streams = 128;
  std::uint32_t initial_window = 256 * 1024;  // per stream
  std::uint32_t connection_window = 1 << 20;  // per connection
  std::uint32_t max_frame_size = 16384;
  std::uint32_t max_header_list_bytes = 64 * 1024;
  std::uint32_t max_resets_per_second = 100;  // rapid reset (CVE-2023-44487)
  std::uint32_t max_settings_per_frame = 32;
  std::uint32_t max_outbound_ack = 1000;  // SETTINGS/PING floods
  std::uint32_t max_continuations = 32;   // CONTINUATION frames per header block
};

struct Request {
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::string protocol;      // :protocol of an extended CONNECT (RFC 8441), e.g. "websocket"
  http::HeaderList headers;  // regular fields, names lower-case as HTTP/2 sends them
};

struct Stats {
  std::uint64_t resets_received = 0;
  std::uint64_t streams_refused = 0;  // over a limit (header list size, ...)
  bool rapid_reset = false;           // the connection was closed for resetting too fast
  std::uint64_t continuation_floods = 0;
};

class ServerCodec {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // `request` is the codec's, reused once the stream closes: copy what is needed, or take
    // its contents (swap them out; the codec clears the object before it serves again).
    virtual void onRequest(std::int32_t stream, Request& request, bool end_stream) = 0;
    // Body bytes; call consume() once they are passed on, to open the flow-control window.
    virtual void onRequestData(std::int32_t stream, std::string_view data) = 0;
    virtual void onRequestEnd(std::int32_t stream) = 0;
    // The stream is gone (finished, or reset by either side with `error_code`).
    virtual void onStreamClosed(std::int32_t stream, std::uint32_t error_code) = 0;
  };

  ServerCodec(Handler& handler, Limits limits);
  ~ServerCodec();
  ServerCodec(const ServerCodec&) = delete;
  ServerCodec& operator=(const ServerCodec&) = delete;

  // Feeds received bytes. Returns false when the connection must close (after sending
  // pending output, which may hold a GOAWAY).
  bool receive(std::string_view bytes, Clock::time_point now);

  void consume(std::int32_t stream, std::size_t bytes);

  // Response side. Header names must be lower-case. The codec keeps `headers` until the stream
  // closes and nghttp2 encodes them from there, without a copy; `headers` gets back the
  // stream's previous list, to reuse. False when the stream is closed or already has its
  // response head.
  bool respond(std::int32_t stream, int status, http::HeaderList& headers, bool end_stream);
  void sendData(std::int32_t stream, std::string_view data, bool end_stream);
  void sendTrailers(std::int32_t stream, const http::HeaderList& trailers);
  // An interim (1xx) response head, e.g. 100 Continue.
  void sendInterim(std::int32_t stream, int status);
  // Response body bytes queued for the stream and not yet framed (held back by flow control).
  std::size_t pendingBytes(std::int32_t stream) const;
  void resetStream(std::int32_t stream, std::uint32_t error_code);
  // Graceful: announce the last stream served; in-flight streams finish.
  void goAway();

  // Bytes to write to the peer; call consumeOutput(n) after writing n of them.
  std::string_view output();
  void consumeOutput(std::size_t n);
  bool wantsClose() const;  // nothing more to read or write: close after flushing output

  const Stats& stats() const { return stats_; }

 private:
  struct Stream;
  static ServerCodec& self(void* user_data) { return *static_cast<ServerCodec*>(user_data); }

  Handler& handler_;
  Limits limits_;
  nghttp2_session* session_ = nullptr;
  using Streams = StreamTable<std::unique_ptr<Stream>>;
  void openStream(std::int32_t id);
  Stream* find(std::int32_t id) const;
  Streams streams_;
  // The stream last looked up: a header block's fields, its end and the response's frames come
  // in runs for one stream, and each would otherwise probe streams_ again.
  mutable Stream* last_ = nullptr;
  mutable std::int32_t last_id_ = 0;
  // Closed streams: reused with their buffers, no allocation per stream.
  std::vector<std::unique_ptr<Stream>> spare_;
  std::vector<nghttp2_nv> nva_;  // scratch for the fields of one response
  detail::FrameOutput output_;
  Stats stats_;
  bool failed_ = false;
  std::deque<Clock::time_point> reset_times_;
  Clock::time_point now_{};
  std::uint32_t continuations_ = 0;  // in the header block being received

  friend struct Callbacks;
};

}  // namespace portico::http2
