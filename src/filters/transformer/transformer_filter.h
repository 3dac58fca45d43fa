#pragma once
// request-transformer and response-transformer (Kong's names): edit headers, query, path,
// method and status, and the JSON body with ordered ops on JSON Pointers (`*` = every element),
// values being templates over the request and consumer. Bodies go through a buffered body
// transform (max_buffer; over it 413 / 502, never truncated); a body that is not JSON passes
// unchanged and is counted (portico_filter_events_total{event="not_json"}) unless strict.
#include "api/filter.h"

namespace portico::filters {

api::FilterType requestTransformerFilterType();
api::FilterType responseTransformerFilterType();

}  // namespace portico::filters
