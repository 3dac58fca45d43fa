#pragma once
// compression: encodes response bodies as zstd, br or gzip by the client's Accept-Encoding, as
// they stream (each piece flushed, so streamed answers are not held back), and optionally
// decodes request bodies sent with Content-Encoding for the filters and services behind it,
// with a bound on the decoded size (a decompression bomb is a 413). List it before other body
// filters of the route: response filters run in reverse order, so its encoding is then the last
// transform applied.
#include "api/filter.h"

namespace portico::filters {

api::FilterType compressionFilterType();

}  // namespace portico::filters
