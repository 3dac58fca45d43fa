#pragma once
// Sans-I/O HTTP/2 client side on nghttp2, for upstreams that speak HTTP/2 (gRPC services
// among them): requests in, bytes out; bytes in, response events out. Many requests share one
// connection. Flow control is driven by the consumer: response bytes open the window only when
// consume() says they have left for the client.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "http/header_list.h"
#include "http2/outbound.h"
#include "http2/stream_table.h"

namespace portico::http2 {

struct ClientLimits {
  std::uint32_t initial_window = 1024 * 1024;  // per stream
  std::uint32_t connection_window = 16 * 1024 * 1024;
  std::uint32_t max_header_list_bytes = 64 * 1024;  // per response (and trailers)
};

class ClientCodec {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // The final response head (1xx ones are skipped); fields lower-case, no pseudo-fields.
    virtual void onResponseHead(std::int32_t stream, int status, http::HeaderList fields) = 0;
    virtual void onResponseData(std::int32_t stream, std::string_view data) = 0;
    virtual void onResponseTrailers(std::int32_t stream, http::HeaderList trailers) = 0;
    virtual void onResponseEnd(std::int32_t stream) = 0;
    // The stream is gone: after its end, or reset (`error_code` != 0) by either side.
    virtual void onStreamClosed(std::int32_t stream, std::uint32_t error_code) = 0;
  };

  ClientCodec(Handler& handler, ClientLimits limits);
  ~ClientCodec();
  ClientCodec(const ClientCodec&) = delete;
  ClientCodec& operator=(const ClientCodec&) = delete;

  // `fields` start with the pseudo-fields (:method, :scheme, :authority, :path). Returns the
  // stream id, or -1 when this connection takes no more streams.
  std::int32_t submitRequest(const http::HeaderList& fields, bool end_stream);
  void sendData(std::int32_t stream, std::string_view data, bool end_stream);
  std::size_t pendingBytes(std::int32_t stream) const;
  void consume(std::int32_t stream, std::size_t bytes);
  void resetStream(std::int32_t stream, std::uint32_t error_code);

  bool receive(std::string_view bytes);  // false: the connection must close
  std::string_view output();
  void consumeOutput(std::size_t n) { output_.consume(n); }

  // A new stream may be opened: no GOAWAY either way, under the server's concurrency limit.
  bool canOpenStream() const;
  std::size_t openStreams() const { return streams_.size(); }
  bool wantsClose() const;

 private:
  struct Stream;
  struct Callbacks;
  static ClientCodec& self(void* user) { return *static_cast<ClientCodec*>(user); }

  Handler& handler_;
  ClientLimits limits_;
  nghttp2_session* session_ = nullptr;
  StreamTable<std::unique_ptr<Stream>> streams_;
  detail::FrameOutput output_;
  bool failed_ = false;
};

}  // namespace portico::http2
