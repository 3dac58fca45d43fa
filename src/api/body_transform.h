#pragma once
// Body transforms: how a filter changes a request or response body as it passes. A filter
// installs one from a request phase (ctx.transformRequestBody) or from onResponseHeaders
// (ctx.transformResponseBody); the core runs every installed transform on the body, in the
// order installed, whatever the protocols on either side, and recomputes the framing
// (Content-Length when the whole body is known before the head leaves, else chunked / HTTP/2
// DATA). A body that a transform changed gets a weak ETag. A transform that only observes the
// body (a cache storing it) changes neither: when every installed transform observes, the
// response leaves as it came, framing and ETag included.
//
// Failure: a transform that fails before the response head has left gives the client a 502
// JSON error (413 for request bodies over a buffered transform's limit); after the head has
// left, the HTTP/1 connection is closed / the HTTP/2 stream reset, so a client never takes a
// cut body for a whole one. Called on the request's worker thread only.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/thread_block_cache.h"
#include "http/codec/message_head.h"

namespace portico::api {

// Made per request: from the worker's cache of freed blocks, not from malloc.
class BodyTransform : public block_cache::CacheAllocated {
 public:
  virtual ~BodyTransform() = default;
  // The filter's name, for logs and errors.
  virtual std::string_view name() const = 0;
  // The next piece of the body in `in`; `end` on the last call (`in` may then be empty).
  // Appends what is ready to `out`. Returns false with `error` set on failure.
  virtual bool transform(std::string_view in, bool end, std::string& out, std::string& error) = 0;
  // The body's whole length, when known before it arrives (Content-Length); called at most
  // once, before the first transform(), and only on the first transform of a chain.
  virtual void expectLength(std::uint64_t) {}
  // The body passes on unchanged: transform() sees each piece and appends nothing (the core
  // forwards the input itself).
  virtual bool observesOnly() const { return false; }
  // The output is exactly the representation the response head describes (an observer; a
  // cache answering with a stored response): its ETag stays strong.
  virtual bool keepsEtag() const { return observesOnly(); }
  // The upstream's trailers, before the last transform() call. `head` is the response head
  // while it has not left (nothing was output yet): it may still be changed (a gRPC status
  // becoming the HTTP status); null once it has. Returns true when the trailers are consumed
  // (not sent to the client).
  virtual bool trailers(const http::HeaderList&, http::ResponseHead* /*head*/) { return false; }
  // Whether the transform may make a body from none: a response that ends with its head is
  // then run through the chain too (a gRPC trailers-only answer becoming a JSON error).
  virtual bool makesBodyOfNothing() const { return false; }
};

// A transform that needs the whole body: gathers it up to `max_buffer` bytes, then calls
// transformWhole once. A body over the limit is never truncated: the transform fails with
// kBodyTooLarge.
class BufferedBodyTransform : public BodyTransform {
 public:
  static constexpr std::string_view kBodyTooLarge = "body too large for transformation";
  static constexpr std::size_t kDefaultMaxBuffer = 8 * 1024 * 1024;

  // Room kept past the end of the gathered body, for parsers that read ahead (simdjson reads
  // up to 64 bytes past the end).
  static constexpr std::size_t kReadAhead = 64;

  explicit BufferedBodyTransform(std::size_t max_buffer) : max_buffer_(max_buffer) {}

  void expectLength(std::uint64_t length) final {
    if (length <= max_buffer_) body_.reserve(static_cast<std::size_t>(length) + kReadAhead);
  }

  bool transform(std::string_view in, bool end, std::string& out, std::string& error) final {
    if (body_.size() + in.size() > max_buffer_) {
      error = kBodyTooLarge;
      tooLarge_ = true;
      return false;
    }
    body_.append(in);
    if (!end) return true;
    if (!transformWhole(body_, error)) return false;
    if (out.empty())
      out.swap(body_);  // no copy of what may be megabytes
    else
      out.append(body_);
    return true;
  }
  bool tooLarge() const { return tooLarge_; }

 protected:
  // The whole body, to change in place. Returns false with `error` set on failure.
  virtual bool transformWhole(std::string& body, std::string& error) = 0;

 private:
  std::size_t max_buffer_;
  std::string body_;
  bool tooLarge_ = false;
};

}  // namespace portico::api
