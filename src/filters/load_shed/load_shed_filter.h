#pragma once
// load-shed: adaptive load shedding. When the traffic it watches runs over its in-flight or
// latency target, the lowest-priority requests (by route or consumer group) get 503 at once,
// one priority level at a time, so that higher priorities keep their success rate instead of
// every caller timing out. See docs/filters/load-shed.md.
#include "api/filter.h"

namespace portico::filters {

api::FilterType loadShedFilterType();

}  // namespace portico::filters
