// The compression filter's encoders on a 16 KiB JSON body with its length known (what a proxied
// answer with Content-Length gives them), whole or in flushed pieces: bytes of body per second.
#include <benchmark/benchmark.h>

#include "filters/compression/codec.h"

namespace {

std::string document() {
  std::string s = "[";
  for (int i = 0; s.size() < 16 * 1024; ++i)
    s += (i ? "," : "") + std::string(R"({"sku":"sku-)") + std::to_string(100000 + i) +
         R"(","price":)" + std::to_string(i * 3) + R"(,"note":"xxxxxxxxxxxxxxxx"})";
  return s + "]";
}

void BM_Encode(benchmark::State& state) {
  using portico::filters::compression::Coding;
  const auto coding = static_cast<Coding>(state.range(0));
  const int level = static_cast<int>(state.range(1));
  const std::string doc = document();
  std::string out;
  for (auto _ : state) {
    out.clear();
    auto enc = portico::filters::compression::makeEncoder(coding, level);
    enc->expectLength(doc.size());
    const std::size_t piece = static_cast<std::size_t>(state.range(2));
    for (std::size_t i = 0; i < doc.size(); i += piece)
      enc->encode(std::string_view(doc).substr(i, piece), false, out, state.range(3) != 0);
    enc->encode({}, true, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
  state.counters["ratio"] = static_cast<double>(doc.size()) / static_cast<double>(out.size());
}
// Coding (0 gzip, 1 br, 2 zstd), level, piece size, each piece flushed (1) or not (0).
BENCHMARK(BM_Encode)
    ->Args({0, 5, 1 << 20, 0})
    ->Args({1, 4, 1 << 20, 0})
    ->Args({2, 3, 1 << 20, 0})
    ->Args({2, 3, 4096, 1})
    ->Args({2, 3, 4096, 0});

}  // namespace
