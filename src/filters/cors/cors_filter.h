#pragma once
// cors: answers CORS preflights itself (the upstream never sees them) and adds the CORS
// response headers for allowed origins: exact, wildcard subdomain ("https://*.example.com"),
// RE2 regex, or "*".
#include "api/filter.h"

namespace portico::filters {

api::FilterType corsFilterType();

}  // namespace portico::filters
