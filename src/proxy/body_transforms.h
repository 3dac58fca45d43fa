#pragma once
// Running a chain of body transforms (api/body_transform.h), and the response stream that
// applies them on the way to the client.
#include <memory>
#include <string>
#include <vector>

#include "api/body_transform.h"
#include "proxy/upstream_exchange.h"

namespace portico::proxy {

using TransformChain = std::vector<std::unique_ptr<api::BodyTransform>>;

// Feeds `in` through every transform of `chain` in order; the last one's output is appended to
// `out`. On failure returns false with `error` set to the client's error text ("<what> body
// too large for transformation", or "<what> body transform failed: <reason>", `what` being
// "request" or "response"); the failing filter and its reason are logged for `request_id`.
bool runTransforms(TransformChain& chain, std::string_view in, bool end, std::string& out,
                   std::string& error, std::string_view request_id,
                   std::string_view what = "response");

// Tells the chain's first transform the length of the body about to come.
void expectBodyLength(TransformChain& chain, std::uint64_t length);

// Whether every transform of `chain` only observes the body (it passes unchanged).
bool observesOnly(const TransformChain& chain);

// Marks a head whose body a transform may change: no length known yet (chunked / DATA frames),
// and a weak ETag (the representation is no longer byte-identical) unless every transform
// keeps it (api::BodyTransform::keepsEtag).
void prepareTransformedHead(http::ResponseHead& head, const TransformChain& chain);

// A ResponseStream that transforms the body before passing it to `inner`. The head waits for
// the first transformed bytes: when the whole body is known by then (a buffered transform, or
// a short body) it leaves with its Content-Length; otherwise it is chunked / HTTP/2 DATA. A
// failure before the head left is reported (failedBeforeHead) for the caller to answer 502;
// after, sending fails (the HTTP/1 connection closes, the HTTP/2 stream is reset). A chain of
// observers only sees the body: the head and body pass through at once, unchanged.
class TransformStream final : public ResponseStream {
 public:
  TransformStream(ResponseStream& inner, TransformChain& chain, std::string& error,
                  std::string_view request_id)
      : inner_(inner), chain_(chain), error_(error), request_id_(request_id) {}

  Task<bool> sendHead(const http::ResponseHead& resp, bool end_stream) override;
  Task<bool> sendData(std::string_view data, bool end_stream) override;
  Task<bool> sendTrailers(const http::HeaderList& trailers) override;

  bool failed() const { return failed_; }
  bool failedBeforeHead() const { return failed_ && !head_sent_; }

 private:
  ResponseStream& inner_;
  TransformChain& chain_;
  std::string& error_;
  std::string_view request_id_;
  http::ResponseHead head_;
  std::string out_;
  bool head_sent_ = false;
  bool failed_ = false;
  bool observing_ = false;  // every transform observes: nothing is held back
};

}  // namespace portico::proxy
