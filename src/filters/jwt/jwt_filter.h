#pragma once
// jwt: bearer tokens verified against keys from a JWKS URI or OpenID Connect discovery, with
// issuer, audience, time and required-claim checks; verified tokens are cached until they
// expire. See docs/filters/jwt.md.
#include "api/filter.h"

namespace portico::filters {

api::FilterType jwtFilterType();

}  // namespace portico::filters
