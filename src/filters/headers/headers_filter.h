#pragma once
// headers: add, set and remove headers on the request (before forwarding) and on the
// response (before it goes back to the client).
#include <string>
#include <utility>
#include <vector>

#include "api/filter.h"

namespace portico::filters {

struct HeaderEdits {
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> set;  // replaces any existing value
  std::vector<std::pair<std::string, std::string>> add;  // appends another field
  void apply(http::HeaderList& headers) const;
};

struct HeadersConfig {
  HeaderEdits request;
  HeaderEdits response;
};

api::FilterType headersFilterType();

}  // namespace portico::filters
