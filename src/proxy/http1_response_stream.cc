#include "proxy/http1_response_stream.h"

#include <array>
#include <cstdio>

#include "proxy/message_writer.h"

namespace portico::proxy {

Task<bool> Http1ResponseStream::sendHead(const http::ResponseHead& resp, bool end_stream) {
  const bool to_http10 = req_.version_minor == 0;
  ResponseFraming framing;
  framing.client_version_minor = req_.version_minor;
  framing.chunked = resp.framing == http::BodyFraming::Chunked && !to_http10;
  framing.until_close = resp.framing == http::BodyFraming::Chunked && to_http10;
  framing.keep_alive = req_.keep_alive && !framing.until_close && !io_.worker().draining;
  chunked_ = framing.chunked;
  keep_alive_ = framing.keep_alive;
  out_.clear();
  writeResponseHead(out_, resp, framing);
  if (!end_stream) co_return true;  // leaves with the first body bytes
  co_return co_await write({});
}

Task<bool> Http1ResponseStream::sendData(std::string_view data, bool end_stream) {
  if (req_.method == "HEAD") data = {};
  if (chunked_ && !data.empty()) {
    char size[24];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    out_.append(size, static_cast<std::size_t>(n));
  }
  if (!chunked_ || data.empty()) {
    if (end_stream && chunked_) out_.append("0\r\n\r\n");
    co_return co_await write(data);
  }
  const bool sent = co_await write(data);
  if (!sent) co_return false;
  out_.append(end_stream ? "\r\n0\r\n\r\n" : "\r\n");
  if (end_stream) co_return co_await write({});
  co_return true;  // the chunk's CRLF leaves with the next piece
}

Task<bool> Http1ResponseStream::sendTrailers(const http::HeaderList& trailers) {
  if (chunked_) {
    out_.append("0\r\n");
    for (const auto& t : trailers) {
      out_.append(t.name);
      out_.append(": ");
      out_.append(t.value);
      out_.append("\r\n");
    }
    out_.append("\r\n");
  }
  co_return co_await write({});
}

// Writes what waits in out_, then `data`.
Task<bool> Http1ResponseStream::write(std::string_view data) {
  std::array<asio::const_buffer, 2> buffers{asio::buffer(out_), asio::buffer(data)};
  boost::system::error_code ec;
  if (!io_.clientTls()) {
    // What the (non-blocking) socket takes now leaves without a trip through the event loop;
    // only the rest is awaited.
    const std::size_t n = io_.client().write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
    if (ec || n == out_.size() + data.size()) {
      out_.clear();
      co_return !ec;
    }
    if (n >= out_.size()) {
      buffers = {asio::const_buffer(), asio::buffer(data.substr(n - out_.size()))};
    } else {
      buffers[0] = asio::buffer(out_) + n;
    }
  }
  io_.armOp(io_.limits().idle_timeout);
  co_await writeJoined(io_.client(), io_.clientTls(), buffers, joined_, ec);
  io_.disarmOp();
  out_.clear();
  co_return !ec;
}

}  // namespace portico::proxy
