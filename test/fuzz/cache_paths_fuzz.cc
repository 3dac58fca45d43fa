// libFuzzer target: the cache's header parsers (HTTP dates, Cache-Control, conditional
// requests) and grpc-transcode's path templates must never crash; a date that parses must
// print and parse back to the same instant.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/cache/cache_policy.h"
#include "filters/grpc_transcode/path_template.h"
#include "http/http_date.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace portico;
  const std::string input(reinterpret_cast<const char*>(data), size);

  if (const auto t = http::parseHttpDate(input)) {
    if (http::parseHttpDate(http::formatHttpDate(*t)) != *t) __builtin_trap();
  }

  http::HeaderList response;
  response.add("Cache-Control", input);
  response.add("Expires", input);
  response.add("Age", input);
  response.add("Vary", input);
  response.add("ETag", input);
  response.add("Last-Modified", input);
  filters::cache::StorePolicy policy;
  (void)filters::cache::decideStore(policy, 200, response, true,
                                    std::chrono::system_clock::from_time_t(0));
  http::HeaderList request;
  request.add("If-None-Match", input);
  request.add("If-Modified-Since", input);
  (void)filters::cache::notModified(request, response);

  if (auto tmpl = filters::grpc_transcode::PathTemplate::parse(input)) {
    std::vector<std::pair<std::string, std::string>> bindings;
    for (std::string_view path : {std::string_view(input), std::string_view("/"),
                                  std::string_view("/a/b/c"), std::string_view("/v1/x:y")})
      (void)tmpl->match(path, bindings);
  }
  return 0;
}
