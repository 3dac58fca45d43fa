// response-transformer's JSON path: parse, 5 ops, write, on the 2 KiB and 1 MiB documents of
// `make bench`'s json-transform rows (same shape). Reports bytes/s of body.
#include <benchmark/benchmark.h>

#include "api/request_context.h"
#include "filters/transformer/json_ops.h"
#include "flow/request_scope.h"

namespace {

std::string document(std::size_t size) {
  const std::string head = R"({"id": 7, "nm": "bench", "internal_cost": 12.5, "items": [)";
  std::string items;
  for (int i = 0; head.size() + items.size() + 2 < size; ++i) {
    char item[128];
    std::snprintf(item, sizeof item,
                  R"(%s{"sku": "sku-%06d", "price": %d, "cost": %d, "note": "xxxxxxxxxxxxxxxx"})",
                  i ? ", " : "", i, i * 3, i * 2);
    items += item;
  }
  return head + items + "]}";
}

void BM_TransformJson(benchmark::State& state) {
  portico::config::Diagnostics diag;
  const auto ops = portico::filters::readJsonOps(
      nlohmann::json::parse(R"([{"op":"remove","path":"/internal_cost"},
                                {"op":"rename","from":"/nm","to":"/name"},
                                {"op":"set","path":"/source","value":"portico"},
                                {"op":"remove","path":"/items/*/cost"},
                                {"op":"default","path":"/tags","value":[]}])"),
      "json", diag);
  const std::string doc = document(static_cast<std::size_t>(state.range(0)));
  portico::api::RequestContext ctx;
  const portico::flow::RequestScope scope(ctx, nullptr);
  std::string body, out;  // reused, as the buffers of a worker that has warmed up
  for (auto _ : state) {
    body.assign(doc);
    out.clear();
    if (!portico::filters::transformJson(ops, body, scope, out)) state.SkipWithError("not JSON");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}
BENCHMARK(BM_TransformJson)->Arg(2048)->Arg(1024 * 1024);

// The baseline of ADR 0008: what the transformers did before, a whole nlohmann DOM parsed and
// dumped (no ops applied: only the floor of that approach).
void BM_NlohmannRoundTrip(benchmark::State& state) {
  const std::string doc = document(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const std::string out = nlohmann::json::parse(doc).dump();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}
BENCHMARK(BM_NlohmannRoundTrip)->Arg(2048)->Arg(1024 * 1024);

}  // namespace
