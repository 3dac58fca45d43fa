#pragma once
// How the routes of a published API answer, by the API's lifecycle state (docs/apis.md):
// deprecated ones add Deprecation (RFC 9745), Sunset (RFC 8594) and Link rel="deprecation";
// retired ones answer 410 Gone. (Draft routes never reach a filter: the listeners' matcher
// leaves them out.) Not a plugin users list: the snapshot puts it first on an API's routes.
#include <memory>

#include "api/filter.h"
#include "config/model.h"

namespace portico::filters {

// Null when the state needs nothing on the request path (draft, published).
// `loaded_at`: unix seconds, the Deprecation date of an API deprecated without deprecated_at.
std::shared_ptr<const api::FilterFactory> makeApiLifecycleFactory(const config::ApiConfig& api,
                                                                  std::int64_t loaded_at);

}  // namespace portico::filters
