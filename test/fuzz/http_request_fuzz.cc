// libFuzzer target: the HTTP/1.1 request head parser and the chunked decoder must never crash,
// leak or read out of bounds, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/codec/chunked_decoder.h"
#include "http/codec/head_parser.h"

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
    if (head.framing == portico::http::BodyFraming::Chunked) {
      portico::http::ChunkedDecoder decoder;
      auto step = decoder.feed(input.substr(r.consumed), [](std::string_view) {});
      if (step.consumed > size - r.consumed) __builtin_trap();
    }
  }
  portico::http::ResponseHead resp;
  (void)portico::http::parseResponseHead(input, limits, false, resp);
  return 0;
}
