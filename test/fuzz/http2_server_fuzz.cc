// libFuzzer target: the HTTP/2 server codec (nghttp2 plus our callbacks and limits) fed
// arbitrary bytes after a valid connection preface, answering every request it delivers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "http2/server_codec.h"

namespace {

struct Answerer : portico::http2::ServerCodec::Handler {
  portico::http2::ServerCodec* codec = nullptr;
  void onRequest(std::int32_t stream, portico::http2::Request&, bool) override {
    portico::http::HeaderList h;
    h.add("content-type", "text/plain");
    codec->respond(stream, 200, h, false);
    codec->sendData(stream, "ok", true);
  }
  void onRequestData(std::int32_t stream, std::string_view data) override {
    codec->consume(stream, data.size());
  }
  void onRequestEnd(std::int32_t) override {}
  void onStreamClosed(std::int32_t, std::uint32_t) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Answerer handler;
  portico::http2::ServerCodec codec(handler, portico::http2::Limits{});
  handler.codec = &codec;
  std::string input = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  input.append(reinterpret_cast<const char*>(data), size);
  auto now = portico::http2::Clock::now();
  // Feed in two pieces to exercise partial frames.
  std::size_t half = input.size() / 2;
  if (codec.receive(std::string_view(input).substr(0, half), now))
    codec.receive(std::string_view(input).substr(half), now);
  auto out = codec.output();
  codec.consumeOutput(out.size());
  return 0;
}
