#pragma once
#include "api/filter_registry.h"

namespace portico::filters {

// The one explicit list of built-in filter types.
void registerBuiltins(api::FilterRegistry& registry);

}  // namespace portico::filters
