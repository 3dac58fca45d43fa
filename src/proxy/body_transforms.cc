#include "proxy/body_transforms.h"

#include <spdlog/spdlog.h>

namespace portico::proxy {

bool runTransforms(TransformChain& chain, std::string_view in, bool end, std::string& out,
                   std::string& error, std::string_view request_id, std::string_view what) {
  if (chain.empty()) {  // nothing installed: the body as it is
    out.append(in);
    return true;
  }
  // Each transform's output is the next one's input; two buffers alternate.
  std::string a, b;
  std::string_view piece = in;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const bool last = i + 1 == chain.size();
    std::string& dest = last ? out : (i % 2 == 0 ? a : b);
    if (!last) dest.clear();
    std::string reason;
    bool ok = false;
    try {
      ok = chain[i]->transform(piece, end, dest, reason);
    } catch (const std::exception& e) {
      reason = e.what();
    }
    if (!ok) {
      if (reason.empty()) reason = "failed";
      spdlog::warn("request {}: {} body transform of filter {} failed: {}", request_id, what,
                   chain[i]->name(), reason);
      error = std::string(what) + (reason == api::BufferedBodyTransform::kBodyTooLarge
                                       ? " body too large for transformation"
                                       : " body transform failed: " + reason);
      return false;
    }
    piece = dest;
  }
  return true;
}

void expectBodyLength(TransformChain& chain, std::uint64_t length) {
  if (!chain.empty()) chain.front()->expectLength(length);
}

void prepareTransformedHead(http::ResponseHead& head) {
  head.framing = http::BodyFraming::Chunked;
  head.content_length = 0;
  const std::string* etag = head.headers.find("etag");
  if (etag && etag->rfind("W/", 0) != 0) head.headers.set("ETag", "W/" + *etag);
}

Task<bool> TransformStream::sendHead(const http::ResponseHead& resp, bool end_stream) {
  if (end_stream) {  // no body: nothing to transform
    head_sent_ = true;
    co_return co_await inner_.sendHead(resp, true);
  }
  head_ = resp;
  if (resp.framing == http::BodyFraming::ContentLength)
    expectBodyLength(chain_, resp.content_length);
  prepareTransformedHead(head_);
  co_return true;
}

Task<bool> TransformStream::sendData(std::string_view data, bool end_stream) {
  if (failed_) co_return false;
  out_.clear();
  if (!runTransforms(chain_, data, end_stream, out_, error_, request_id_)) {
    failed_ = true;
    co_return false;
  }
  if (!head_sent_) {
    if (out_.empty() && !end_stream) co_return true;  // nothing yet: the head can still wait
    if (end_stream) {  // the whole body is known: its exact length goes with the head
      head_.framing = out_.empty() ? http::BodyFraming::None : http::BodyFraming::ContentLength;
      head_.content_length = out_.size();
    }
    head_sent_ = true;
    const bool sent = co_await inner_.sendHead(head_, end_stream && out_.empty());
    if (!sent || (end_stream && out_.empty())) co_return sent;
  }
  if (out_.empty() && !end_stream) co_return true;
  co_return co_await inner_.sendData(out_, end_stream);
}

Task<bool> TransformStream::sendTrailers(const http::HeaderList& trailers) {
  if (failed_) co_return false;
  out_.clear();
  if (!runTransforms(chain_, {}, true, out_, error_, request_id_)) {
    failed_ = true;
    co_return false;
  }
  if (!head_sent_) {
    head_sent_ = true;
    const bool sent = co_await inner_.sendHead(head_, false);
    if (!sent) co_return false;
  }
  if (!out_.empty()) {
    const bool sent = co_await inner_.sendData(out_, false);
    if (!sent) co_return false;
  }
  co_return co_await inner_.sendTrailers(trailers);
}

}  // namespace portico::proxy
