#pragma once
// oauth2-introspection: bearer tokens checked with the provider's RFC 7662 introspection
// endpoint (client credentials), with scope and audience checks; answers are cached (positive
// until the token's expiry within a TTL, negative briefly). See
// docs/filters/oauth2-introspection.md.
#include "api/filter.h"

namespace portico::filters {

api::FilterType oauth2IntrospectionFilterType();

}  // namespace portico::filters
