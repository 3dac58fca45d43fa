#pragma once
// traffic-mirror: sends a copy of a share of a route's requests (method, path after rewrites,
// headers, body) to another upstream, fire-and-forget: the copy's answer is discarded and never
// delays or changes the client's response. Envoy's request_mirror_policies, APISIX's
// proxy-mirror.
#include "api/filter.h"

namespace portico::filters {

api::FilterType trafficMirrorFilterType();

}  // namespace portico::filters
