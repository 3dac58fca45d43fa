// libFuzzer target: the HTTP/2 client codec (what Portico runs against HTTP/2 upstreams) fed
// arbitrary bytes as the server's side of a connection with two requests in flight.
#include <cstddef>
#include <cstdint>
#include <string>

#include "http2/client_codec.h"

namespace {

struct Consumer : portico::http2::ClientCodec::Handler {
  portico::http2::ClientCodec* codec = nullptr;
  void onResponseHead(std::int32_t, int, portico::http::HeaderList) override {}
  void onResponseData(std::int32_t stream, std::string_view data) override {
    codec->consume(stream, data.size());
  }
  void onResponseTrailers(std::int32_t, portico::http::HeaderList) override {}
  void onResponseEnd(std::int32_t) override {}
  void onStreamClosed(std::int32_t, std::uint32_t) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Consumer handler;
  portico::http2::ClientCodec codec(handler, portico::http2::ClientLimits{});
  handler.codec = &codec;
  portico::http::HeaderList fields;
  fields.add(":method", "POST");
  fields.add(":scheme", "http");
  fields.add(":authority", "backend");
  fields.add(":path", "/svc/Call");
  fields.add("te", "trailers");
  const std::int32_t first = codec.submitRequest(fields, false);
  if (first > 0) codec.sendData(first, "request body", true);
  codec.submitRequest(fields, true);
  auto out = codec.output();
  codec.consumeOutput(out.size());
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Two pieces, to exercise partial frames.
  if (codec.receive(input.substr(0, size / 2))) codec.receive(input.substr(size / 2));
  out = codec.output();
  codec.consumeOutput(out.size());
  return 0;
}
