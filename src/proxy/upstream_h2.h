#pragma once
// HTTP/2 towards upstreams (protocol h2 or h2c): one multiplexed connection per target and
// worker carries many requests; a connection the server is closing (GOAWAY), or one at the
// server's stream limit, gets a sibling. A reader and a writer coroutine own the socket; each
// request waits on its stream's signal for the response head, data, trailers and end.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/header_list.h"
#include "http2/client_codec.h"
#include "http2/stream_table.h"
#include "proxy/wake_event.h"
#include "proxy/worker_context.h"

namespace portico::proxy {

// One request's view of its stream. Lives on the exchange's frame; registered with the
// connection from open() to detach().
struct UpstreamH2Stream {
  explicit UpstreamH2Stream(asio::io_context& io) : signal(io.get_executor()) {}
  void wake() { signal.wake(); }

  WakeEvent signal;  // woken on every event below
  bool head = false;
  int status = 0;
  http::HeaderList fields;
  std::string data;  // response body received and not yet relayed
  http::HeaderList trailers;
  bool ended = false;   // END_STREAM received
  bool closed = false;  // the stream is gone (after its end, or reset)
  std::uint32_t error = 0;
};

class UpstreamH2Connection final : public http2::ClientCodec::Handler {
 public:
  UpstreamH2Connection(WorkerContext& w, std::unique_ptr<UpstreamConnection> conn);
  ~UpstreamH2Connection() override;
  // Starts the reader and writer; they keep the connection alive until it closes.
  static void start(const std::shared_ptr<UpstreamH2Connection>& self);

  // -1: no new stream on this connection (the caller tries another).
  std::int32_t open(UpstreamH2Stream& stream, const http::HeaderList& fields, bool end_stream);
  // The request is done with its stream; resets it if still open.
  void detach(std::int32_t id);
  void flush() { write_wake_.wake(); }
  bool usable() const { return !closing_ && codec.canOpenStream(); }
  void close();  // stops reading; streams still open fail
  bool closing() const { return closing_; }
  // No request has used it for `idle_timeout` (the upstream pool's setting).
  bool idleSince(Clock::time_point now) const {
    return streams_.empty() && now - idle_since_ >= idle_timeout_;
  }
  void setIdleTimeout(Clock::duration d) { idle_timeout_ = d; }

  http2::ClientCodec codec;

 private:
  Task<void> reader(std::shared_ptr<UpstreamH2Connection> keep_alive);
  Task<void> writer(std::shared_ptr<UpstreamH2Connection> keep_alive);
  void failAll();
  UpstreamH2Stream* find(std::int32_t id);

  void onResponseHead(std::int32_t id, int status, http::HeaderList fields) override;
  void onResponseData(std::int32_t id, std::string_view data) override;
  void onResponseTrailers(std::int32_t id, http::HeaderList trailers) override;
  void onResponseEnd(std::int32_t id) override;
  void onStreamClosed(std::int32_t id, std::uint32_t error_code) override;

  WorkerContext& w_;
  std::unique_ptr<UpstreamConnection> conn_;
  http2::StreamTable<UpstreamH2Stream*> streams_;
  WakeEvent write_wake_;
  std::vector<asio::const_buffer> rest_;
  bool closing_ = false;
  Clock::time_point idle_since_;
  Clock::duration idle_timeout_ = std::chrono::seconds(60);
};

// The worker's HTTP/2 upstream connections, by pool key.
class UpstreamH2Pool {
 public:
  std::shared_ptr<UpstreamH2Connection> find(const std::string& key);
  void add(const std::string& key, std::shared_ptr<UpstreamH2Connection> conn);
  // Closes connections idle past their timeout and forgets closed ones (the worker's sweeper).
  void sweep(Clock::time_point now);
  void closeAll();

 private:
  std::unordered_map<std::string, std::vector<std::shared_ptr<UpstreamH2Connection>>> conns_;
};

}  // namespace portico::proxy
