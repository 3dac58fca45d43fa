#pragma once
// concurrency-limit: at most `max` requests in flight per key (route by default, or consumer,
// ...), across the workers of this process; a few more may wait `queue_timeout` in a short
// queue; past that, 503 at once.
#include "api/filter.h"

namespace portico::filters {

api::FilterType concurrencyLimitFilterType();

}  // namespace portico::filters
