#pragma once
// request-id: controls how the request id travels. The core always assigns an id (kept from
// the client's X-Request-Id, or generated); this filter can rename the header, refuse ids from
// clients, and choose whether the id is echoed in the response.
#include "api/filter.h"

namespace portico::filters {

struct RequestIdConfig {
  std::string header = "X-Request-Id";
  bool trust_incoming = true;  // false: always generate a fresh id
  bool echo = true;            // send the id back in the response
};

api::FilterType requestIdFilterType();

}  // namespace portico::filters
