#include "filters/builtins.h"

#include "filters/access_log/access_log_filter.h"
#include "filters/headers/headers_filter.h"
#include "filters/request_id/request_id_filter.h"
#include "filters/static_response/static_response_filter.h"

namespace portico::filters {

void registerBuiltins(api::FilterRegistry& registry) {
  registry.add(accessLogFilterType());
  registry.add(headersFilterType());
  registry.add(requestIdFilterType());
  registry.add(staticResponseFilterType());
}

}  // namespace portico::filters
