#include "filters/request_validation/json_schema.h"

// valijson reports a bad schema by throwing (caught at load) instead of aborting the process.
#define VALIJSON_USE_EXCEPTIONS 1

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace portico::filters {

struct JsonSchema::Compiled {
  valijson::Schema schema;
};

namespace {

// valijson's context ("<root>", "[items]", "[0]", ...) as a JSON Pointer.
std::string pointerOf(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& step : context) {
    if (step == "<root>") continue;
    std::string_view token = step;
    if (token.size() >= 2 && token.front() == '[' && token.back() == ']')
      token = token.substr(1, token.size() - 2);
    out += '/';
    for (char c : token) {
      if (c == '~')
        out += "~0";
      else if (c == '/')
        out += "~1";
      else
        out += c;
    }
  }
  return out;
}

// Each worker thread keeps one validator: it caches the regexes of `pattern` constraints.
valijson::Validator& workerValidator() {
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  return validator;
}

bool check(const valijson::Schema& schema, const nlohmann::json& value,
           std::vector<SchemaViolation>& out) {
  valijson::ValidationResults results;
  const valijson::adapters::NlohmannJsonAdapter adapter(value);
  if (workerValidator().validate(schema, adapter, &results)) return true;
  valijson::ValidationResults::Error error;
  std::vector<SchemaViolation> found;
  while (results.popError(error)) {
    // valijson also reports each parent of a failure ("Failed to validate item #0 ...",
    // "... against schema associated with property name 'sku'"): those that only repeat a
    // deeper failure are left out; the parent's own failures (required, additionalProperties)
    // stay.
    found.push_back({pointerOf(error.context), error.description});
  }
  auto repeats = [&](const SchemaViolation& parent) {
    const std::string& p = parent.pointer;
    return parent.message.starts_with("Failed to validate") &&
           std::any_of(found.begin(), found.end(), [&](const SchemaViolation& v) {
             return v.pointer.size() > p.size() && v.pointer.compare(0, p.size(), p) == 0 &&
                    v.pointer[p.size()] == '/';
           });
  };
  for (const auto& v : found)
    if (!repeats(v)) out.push_back(v);
  return false;
}

}  // namespace

Result<JsonSchema> JsonSchema::compile(const nlohmann::json& schema) {
  auto compiled = std::make_shared<Compiled>();
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    const valijson::adapters::NlohmannJsonAdapter adapter(schema);
    parser.populateSchema(adapter, compiled->schema);
  } catch (const std::exception& e) {
    return makeError(std::string("not a valid JSON Schema (draft 7): ") + e.what());
  }
  JsonSchema s;
  s.compiled_ = std::move(compiled);
  s.fast_ = FastSchema::compile(schema);
  return s;
}

bool JsonSchema::validateText(std::string_view document, std::vector<SchemaViolation>& out) const {
  if (fast_ && fast_->valid(document)) return true;  // else valijson decides, and reports
  const nlohmann::json doc = nlohmann::json::parse(document, nullptr, false);
  if (doc.is_discarded()) {
    out.push_back({"", "not JSON"});
    return false;
  }
  return check(compiled_->schema, doc, out);
}

bool JsonSchema::validate(const nlohmann::json& value, std::vector<SchemaViolation>& out) const {
  return check(compiled_->schema, value, out);
}

}  // namespace portico::filters
