#pragma once
// key-auth: the caller presents an API key in a header and/or a query parameter; a known key
// makes the request its consumer's. Keys are looked up by SHA-256 digest (the snapshot holds no
// key in clear) and compared in constant time.
#include <memory>
#include <string>

#include "api/filter.h"

namespace portico::filters {

api::FilterType keyAuthFilterType();

}  // namespace portico::filters
