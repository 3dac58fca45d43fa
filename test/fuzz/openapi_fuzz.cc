// libFuzzer target: OpenAPI import (the body of POST /admin/v1/apis/{name}/openapi, as JSON)
// must never crash, and what it makes must be a document nlohmann can write.
#include <cstddef>
#include <cstdint>
#include <string>

#include "admin/openapi_import.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto spec = nlohmann::json::parse(data, data + size, nullptr, false);
  if (spec.is_discarded()) return 0;
  for (const bool mock : {false, true}) {
    const auto out =
        portico::admin::importOpenApi(spec, {"api", mock ? "" : "svc", "", "/b", mock});
    if (out.ok()) (void)out->dump();
  }
  return 0;
}
