#pragma once
// acl: lets a request through by its consumer's groups (allow list or deny list); 403
// otherwise. Runs after the auth filters, which set the consumer.
#include "api/filter.h"

namespace portico::filters {

api::FilterType aclFilterType();

}  // namespace portico::filters
