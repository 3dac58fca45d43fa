#include "proxy/call_parts.h"

#include <cstdio>
#include <cstring>

#include "proxy/upstream_calls.h"

namespace portico::proxy {

using boost::system::error_code;

void completeCall(RunningCall& call, api::CallResponse response) {
  if (call.cancelled) return;
  RequestCalls* owner = call.owner;
  auto done = std::move(call.done);
  if (owner) owner->finished(call);
  if (done) done(std::move(response));
}

void CallBody::fill(std::string& body) {
  if (body.empty()) return;
  buffered_.reserve(body.size());
  std::memcpy(buffered_.writePtr(), body.data(), body.size());
  buffered_.commit(body.size());
  body.clear();
}

void buildCallHead(api::CallRequest& request, bool streamed, CallBody& body, http::RequestHead& h) {
  h.method = request.method;
  h.target = request.target;
  if (h.target.empty() || h.target.front() != '/') h.target.insert(0, "/");
  const auto q = h.target.find('?');
  h.path = h.target.substr(0, q);
  h.query = q == std::string::npos ? std::string() : h.target.substr(q + 1);
  h.headers = std::move(request.headers);
  if (streamed) {
    body.stream(request.body_length);
    h.framing = request.body_length ? http::BodyFraming::ContentLength : http::BodyFraming::Chunked;
    h.content_length = request.body_length.value_or(0);
  } else if (!request.body.empty()) {
    h.framing = http::BodyFraming::ContentLength;
    h.content_length = request.body.size();
    body.fill(request.body);
  }
}

Task<std::size_t> CallBody::read(asio::mutable_buffer space, error_code& ec,
                                 std::function<bool()> stopped) {
  while (streamed_ && pending_.empty() && !ended_ && !aborted_ && !closed_ && !stopped()) {
    error_code wait_ec;
    co_await more_.async_wait(asio::redirect_error(kUseAwaitable, wait_ec));
  }
  if (!streamed_ || aborted_ || closed_ || stopped() || (pending_.empty() && ended_)) {
    if (aborted_) {
      ec = asio::error::operation_aborted;
    } else {
      ec = asio::error::eof;
    }
    co_return 0;
  }
  const std::size_t n = std::min(space.size(), pending_.size());
  std::memcpy(space.data(), pending_.data(), n);
  pending_.erase(0, n);
  co_return n;
}

bool CallBody::write(std::string_view chunk) {
  if (closed_ || ended_ || pending_.size() + chunk.size() > kMaxPending) return false;
  if (chunk.empty()) return true;
  if (!length_) {
    char size[24];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    pending_.append(size, static_cast<std::size_t>(n));
  }
  pending_.append(chunk);
  if (!length_) pending_.append("\r\n");
  wake();
  return true;
}

void CallBody::end() {
  if (ended_) return;
  if (!length_) pending_.append("0\r\n\r\n");
  ended_ = true;
  wake();
}

Task<bool> CollectingStream::sendHead(const http::ResponseHead& resp, bool end_stream) {
  out_.status = resp.status;
  out_.headers = resp.headers;
  if (!req_.on_head) co_return true;
  bool more = req_.on_head(resp.status, resp.headers);
  if (more && end_stream && req_.on_data) more = req_.on_data({}, true);
  stopped_ |= !more;
  co_return more;
}

Task<bool> CollectingStream::sendData(std::string_view data, bool end_stream) {
  if (req_.on_data) {
    const bool more = req_.on_data(data, end_stream);
    stopped_ |= !more;
    co_return more;
  }
  if (req_.discard_response) co_return true;
  if (out_.body.size() + data.size() > req_.max_response_bytes) {
    too_large_ = true;
    co_return false;
  }
  out_.body.append(data);
  co_return true;
}

Task<bool> CollectingStream::sendTrailers(const http::HeaderList&) {
  const bool more = req_.on_data ? req_.on_data({}, true) : true;
  stopped_ |= !more;
  co_return more;
}

}  // namespace portico::proxy
