#pragma once
// basic-auth: HTTP Basic credentials checked against the consumers' crypt(3) hashes (yescrypt,
// bcrypt, SHA-crypt, via libcrypt). Hashing runs off the event loop; a verified pair is cached
// for a short while so a hot caller does not pay the hash on every request.
#include "api/filter.h"

namespace portico::filters {

api::FilterType basicAuthFilterType();

}  // namespace portico::filters
