#pragma once
// format-conversion: converts request and response bodies between JSON and XML or form
// encoding (and wraps/unwraps SOAP envelopes), so a JSON client can call an XML or SOAP service
// and the other way round. Bodies are converted whole, up to `max_buffer` (never truncated:
// 413/502 over it); a body that does not parse is 400 (request) or 502 (response).
#include "api/filter.h"

namespace portico::filters {

api::FilterType formatConversionFilterType();

}  // namespace portico::filters
