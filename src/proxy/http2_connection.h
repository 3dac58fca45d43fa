#pragma once
// One client connection over HTTP/2 (h2 after TLS ALPN, or h2c with prior knowledge): the
// nghttp2 codec, one request pipeline per stream, and one writer that serialises all frames.
// Flow control is the backpressure both ways: request bodies open the client's window only as
// they leave for the upstream, and a response waits while its stream's window is shut.
#include <memory>
#include <string>
#include <string_view>

#include "config/model.h"
#include "proxy/request_pipeline.h"

namespace portico::proxy {

class Http2Connection {
 public:
  // `socket` (and `tls` on it, when not null) stay owned by the caller and outlive run().
  Http2Connection(WorkerContext& w, Socket& socket, TlsStream* tls, const ConnectionInfo& conn,
                  const config::Http2Config& cfg, std::string listener_address);
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Serves the connection until it closes. `received`: bytes already read from it (the h2c
  // preface an HTTP/1 read picked up).
  Task<void> run(std::string_view received);

  // From the worker: deadlines of the streams, the idle connection, listener changes.
  void checkDeadline(Clock::time_point now);
  // Graceful: GOAWAY, streams in flight finish, then the connection closes.
  void onDrain();

  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::proxy
