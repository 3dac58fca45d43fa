#pragma once
// rate-limit: limits per second/minute/hour/day (several at once) per key (consumer, group,
// client IP, route, a header, a JWT claim, or a combination), counted on this node or in
// Redis for the whole cluster. RateLimit-* headers on every answer; 429 with Retry-After when
// refused. See docs/filters/rate-limit.md.
#include "api/filter.h"

namespace portico::filters {

api::FilterType rateLimitFilterType();

}  // namespace portico::filters
