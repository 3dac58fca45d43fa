#include "proxy/body_transforms.h"

#include <algorithm>

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
    const bool observes = chain[i]->observesOnly();
    std::string& dest = last ? out : (i % 2 == 0 ? a : b);
    if (!last && !observes) dest.clear();
    std::string reason;
    bool ok = false;
    try {
      std::string unused;  // an observer's output (it writes none)
      ok = chain[i]->transform(piece, end, observes ? unused : dest, reason);
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
    if (observes) {
      if (last) out.append(piece);  // an observer passes its input on
      continue;
    }
    piece = dest;
  }
  return true;
}

bool observesOnly(const TransformChain& chain) {
  for (const auto& t : chain)
    if (!t->observesOnly()) return false;
  return true;
}

void expectBodyLength(TransformChain& chain, std::uint64_t length) {
  if (!chain.empty()) chain.front()->expectLength(length);
}

void prepareTransformedHead(http::ResponseHead& head, const TransformChain& chain) {
  head.framing = http::BodyFraming::Chunked;
  head.content_length = 0;
  bool keeps_etag = true;
  for (const auto& t : chain) keeps_etag = keeps_etag && t->keepsEtag();
  if (keeps_etag) return;
  const std::string* etag = head.headers.find("etag");
  if (etag && etag->rfind("W/", 0) != 0) head.headers.set("ETag", "W/" + *etag);
}

Task<bool> TransformStream::sendHead(const http::ResponseHead& resp, bool end_stream) {
  if (end_stream) {
    const bool makes_body = std::any_of(chain_.begin(), chain_.end(),
                                        [](const auto& t) { return t->makesBodyOfNothing(); });
    if (!makes_body) {  // no body: nothing to transform
      head_sent_ = true;
      co_return co_await inner_.sendHead(resp, true);
    }
    head_ = resp;
    prepareTransformedHead(head_, chain_);
    co_return co_await sendData({}, true);  // the body the chain makes of none
  }
  if (resp.framing == http::BodyFraming::ContentLength)
    expectBodyLength(chain_, resp.content_length);
  if (observesOnly(chain_)) {  // the body passes as it is: so does the head, at once
    observing_ = true;
    head_sent_ = true;
    co_return co_await inner_.sendHead(resp, false);
  }
  head_ = resp;
  prepareTransformedHead(head_, chain_);
  co_return true;
}

Task<bool> TransformStream::sendData(std::string_view data, bool end_stream) {
  if (failed_) co_return false;
  out_.clear();
  if (observing_) {
    for (auto& t : chain_) t->transform(data, end_stream, out_, error_);
    co_return co_await inner_.sendData(data, end_stream);
  }
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
  if (observing_) {
    for (auto& t : chain_) t->transform({}, true, out_, error_);
    co_return co_await inner_.sendTrailers(trailers);
  }
  bool consumed = false;
  for (auto& t : chain_) consumed |= t->trailers(trailers, head_sent_ ? nullptr : &head_);
  if (consumed) co_return co_await sendData({}, true);  // the body ends here for the client
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
