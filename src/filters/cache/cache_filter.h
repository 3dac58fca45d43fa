#pragma once
// Filter `cache`: answers repeated reads from a process-wide store (see docs/filters/cache.md).
#include <memory>

#include "api/filter.h"

namespace portico::api {
class Services;
}

namespace portico::filters {
namespace cache {
class CacheStore;
}

api::FilterType cacheFilterType();

// The process's cache store (shared by every cache filter, kept across reloads while one is
// configured). With `make` false: null when no cache filter is configured.
std::shared_ptr<cache::CacheStore> processCacheStore(api::Services& services, bool make);

}  // namespace portico::filters
