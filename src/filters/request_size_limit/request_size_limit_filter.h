#pragma once
// request-size-limit: a route's own maximum request body (below the listener's limit); 413
// before anything is forwarded when Content-Length says more, and as soon as a chunked body
// goes past it.
#include "api/filter.h"

namespace portico::filters {

api::FilterType requestSizeLimitFilterType();

}  // namespace portico::filters
