#pragma once
// static-response: answers with a fixed status, headers and body without calling an upstream.
// For mocks, maintenance pages and health endpoints.
#include <string>
#include <utility>
#include <vector>

#include "api/filter.h"

namespace portico::filters {

struct StaticResponseConfig {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

api::FilterType staticResponseFilterType();

}  // namespace portico::filters
