#pragma once
// ext-auth: forward authentication. Each request is first sent (method, path, chosen headers,
// no body) to an authorization service; a 2xx lets it through, copying chosen headers of that
// answer upstream; any other answer goes back to the client as it is. See docs/filters/ext-auth.md.
#include "api/filter.h"

namespace portico::filters {

api::FilterType extAuthFilterType();

}  // namespace portico::filters
