#pragma once
// request-validation: checks query parameters, headers and the JSON body of a request against
// JSON Schemas (draft 7) compiled at load, before the request reaches a service. A request that
// fails is answered with `application/problem+json` (RFC 9457) listing every failure with where
// it is (`query`, `header`, `body`) and its JSON Pointer.
#include "api/filter.h"

namespace portico::filters {

api::FilterType requestValidationFilterType();

}  // namespace portico::filters
