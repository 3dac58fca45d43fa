#pragma once
// body-rewrite: replaces literal strings in response bodies (nginx's sub_filter), as they
// stream (a match split across two chunks is still found) or on the whole body at once
// (`mode: buffered`, up to `max_buffer`). A response body transform: the framing is recomputed
// and the ETag weakened, whatever the protocols on either side.
#include "api/filter.h"

namespace portico::filters {

api::FilterType bodyRewriteFilterType();

}  // namespace portico::filters
