#pragma once
// An HTTP/1 response written as head, body pieces and trailers, for responses that do not
// arrive as HTTP/1 bytes (from an HTTP/2 upstream): with Content-Length when the upstream gave
// one, chunked otherwise (trailers in the last chunk), close-delimited for HTTP/1.0 clients.
#include <string>

#include "proxy/upstream_exchange.h"

namespace portico::proxy {

class Http1ResponseStream final : public ResponseStream {
 public:
  Http1ResponseStream(SessionIo& io, const http::RequestHead& req, std::string& out,
                      std::string& joined)
      : io_(io), req_(req), out_(out), joined_(joined) {}

  Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) override;
  Task<bool> sendData(std::string_view data, bool end_stream) override;
  Task<bool> sendTrailers(const http::HeaderList& trailers) override;

  // The connection can carry another request once this response has ended.
  bool keepAlive() const { return keep_alive_; }

 private:
  Task<bool> write(std::string_view data);

  SessionIo& io_;
  const http::RequestHead& req_;
  std::string& out_;  // head and chunk framing waiting to be written
  std::string& joined_;
  bool chunked_ = false;
  bool keep_alive_ = false;
};

}  // namespace portico::proxy
