// HTTP/1.1 request head parse cost for a typical browser-like request.
#include <benchmark/benchmark.h>

#include "http/codec/head_parser.h"

namespace {

void BM_ParseRequestHead(benchmark::State& state) {
  const std::string req =
      "GET /api/v1/users/12345?expand=orders&limit=10 HTTP/1.1\r\n"
      "Host: api.example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
      "Accept: application/json, text/plain, */*\r\n"
      "Accept-Language: en-US,en;q=0.9\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0\r\n"
      "Cookie: session=abcdef0123456789; theme=dark\r\n"
      "X-Request-Id: 7f3c2a1b9d8e4f60a1b2c3d4e5f60718\r\n"
      "Connection: keep-alive\r\n"
      "\r\n";
  portico::http::HeadLimits limits;
  portico::http::RequestHead head;
  for (auto _ : state) {
    auto r = portico::http::parseRequestHead(req, limits, head);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * req.size()));
}
BENCHMARK(BM_ParseRequestHead);

}  // namespace
