#pragma once
// The developer portal's pages (docs/portal.md): server-rendered HTML, every value from the
// store or a user escaped; one small script (sign-in, applications) that talks to the JSON API.
// Served with CSP default-src 'self'.
#include <string>

#include "admin/admin_server.h"
#include "config/model.h"
#include "store/entity_set.h"

namespace portico::portal {

std::string escapeHtml(std::string_view text);

// GET /portal/..., or nullopt-like 404 for other paths.
admin::AdminResponse portalPage(const std::string& path, const config::PortalConfig& config,
                                const store::EntitySet& entities);

}  // namespace portico::portal
