// libFuzzer target: the transformers' JSON path (simdjson parse, overlay edits, writer) must
// never crash or read out of bounds, and whatever it accepts it must write back as valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "filters/transformer/json_ops.h"

namespace {

const std::vector<portico::filters::JsonOp>& ops() {
  static const auto compiled = [] {
    portico::config::Diagnostics diag;
    return portico::filters::readJsonOps(nlohmann::json::parse(R"([{"op":"remove","path":"/a"},
                                  {"op":"rename","from":"/b","to":"/c/d"},
                                  {"op":"remove","path":"/items/*/x"},
                                  {"op":"copy","from":"/items/0","to":"/first"},
                                  {"op":"set","path":"/first/y","value":{"k":[1,"two"]}},
                                  {"op":"move","from":"/items/*/z","to":"/items/*/w"},
                                  {"op":"default","path":"/e","value":null},
                                  {"op":"allow","paths":["/c","/items/*/w","/first","/e"]}])"),
                                         "json", diag);
  }();
  return compiled;
}

// The ops' values have no references: nothing is resolved.
struct NoScope final : portico::flow::Scope {
  nlohmann::json resolve(const portico::flow::Reference&) const override { return nullptr; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  std::string out;
  if (portico::filters::transformJson(ops(), body, NoScope(), out) && !nlohmann::json::accept(out))
    __builtin_trap();
  return 0;
}
