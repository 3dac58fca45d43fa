// request-validation's cost on a 1 KiB JSON body (ADR 0009): through JsonSchema (valijson over
// nlohmann-json, every failure collected), and valijson directly, stopping at the first failure
// (0) or collecting all (1).
#define VALIJSON_USE_EXCEPTIONS 1
#include <benchmark/benchmark.h>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "filters/request_validation/json_schema.h"

namespace {

const char* kSchema = R"({"type": "object", "required": ["id", "items"],
  "properties": {"id": {"type": "integer", "minimum": 1},
                 "email": {"type": "string", "maxLength": 64},
                 "items": {"type": "array", "minItems": 1, "maxItems": 50,
                           "items": {"type": "object", "required": ["sku"],
                                     "properties": {"sku": {"type": "string", "maxLength": 12},
                                                    "qty": {"type": "integer", "maximum": 100}}}},
                 "note": {"enum": ["gift", "rush"]}}})";

std::string body() {
  std::string items;
  for (int i = 0; items.size() < 900; ++i)
    items += (i ? "," : "") + std::string(R"({"sku":"sku-)") + std::to_string(1000 + i) +
             R"(","qty":)" + std::to_string(i % 90) + "}";
  return R"({"id":7,"email":"a@example.com","note":"gift","items":[)" + items + "]}";
}

void BM_ValidateJsonSchema(benchmark::State& state) {
  auto schema = portico::filters::JsonSchema::compile(nlohmann::json::parse(kSchema));
  const std::string doc = body();
  std::vector<portico::filters::SchemaViolation> out;
  for (auto _ : state) {
    out.clear();
    if (!schema->validateText(doc, out)) state.SkipWithError("invalid");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}
BENCHMARK(BM_ValidateJsonSchema);

void BM_ValidateNlohmann(benchmark::State& state) {
  valijson::Schema schema;
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  const nlohmann::json schema_doc = nlohmann::json::parse(kSchema);
  parser.populateSchema(valijson::adapters::NlohmannJsonAdapter(schema_doc), schema);
  valijson::Validator validator;
  const std::string doc = body();
  for (auto _ : state) {
    const nlohmann::json parsed = nlohmann::json::parse(doc);
    valijson::ValidationResults results;
    if (!validator.validate(schema, valijson::adapters::NlohmannJsonAdapter(parsed),
                            state.range(0) ? &results : nullptr))
      state.SkipWithError("invalid");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}
BENCHMARK(BM_ValidateNlohmann)->Arg(0)->Arg(1);  // 1: collecting every failure

}  // namespace
