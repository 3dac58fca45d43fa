// libFuzzer target: the HTTP/1.1 request head parser, the chunked decoder and the URL helpers
// (percent-decoding, query parameters, absolute URLs) must never crash, leak or read out of
// bounds, whatever the bytes; percent-encoding must decode back to the same bytes, and a
// normalised path must stay normalised; a parsed method is upper-case.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/codec/chunked_decoder.h"
#include "http/codec/head_parser.h"
#include "http/token.h"
#include "http/url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  portico::http::HeadLimits limits;
  limits.max_header_bytes = 8192;
  limits.max_uri_bytes = 2048;
  limits.max_headers = 50;
  portico::http::RequestHead head;
  auto r = portico::http::parseRequestHead(input, limits, head);
  if (r.status == portico::http::ParseStatus::Complete) {
    if (r.consumed > size) __builtin_trap();
    if (!portico::http::isMethod(head.method)) __builtin_trap();  // no `delete` gets through
    if (head.framing == portico::http::BodyFraming::Chunked) {
      portico::http::ChunkedDecoder decoder;
      auto step = decoder.feed(input.substr(r.consumed), [](std::string_view) {});
      if (step.consumed > size - r.consumed) __builtin_trap();
    }
  }
  portico::http::ResponseHead resp;
  (void)portico::http::parseResponseHead(input, limits, false, resp);

  using namespace portico::http;
  if (decodeQueryComponent(encodeQueryComponent(input)) != input) __builtin_trap();
  if (decodePathComponent(encodeQueryComponent(input)) != input) __builtin_trap();
  if (decodeQueryComponent(input).size() > size || decodePathComponent(input).size() > size)
    __builtin_trap();
  const QueryParam p = findQueryParam(input, "a");
  if (p.found && (p.begin > p.end || p.end > size)) __builtin_trap();
  // A normalised path holds no dot segment and is its own normalisation: the upstream,
  // decoding once more, finds no new dot in it.
  std::string path = "/" + std::string(input);
  const PathNormalization n = normalizePath(path);
  if (n == PathNormalization::Unchanged || n == PathNormalization::Changed) {
    if (hasDotSegment(path)) __builtin_trap();
    std::string again = path;
    if (normalizePath(again) != PathNormalization::Unchanged) __builtin_trap();
    if (n == PathNormalization::Unchanged && path != "/" + std::string(input)) __builtin_trap();
  }
  if (auto url = parseAbsoluteUrl(input)) {
    if (url->target.empty() || url->target.front() != '/' || url->host.empty()) __builtin_trap();
  }
  return 0;
}
