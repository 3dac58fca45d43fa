#pragma once
// Plans at the gateway (ADR 0015): on every route of an API that a plan lists, the caller's
// application (the consumer the auth filters found) must hold an active subscription to that
// API; its plan's limits and quota then apply, counted per application. Not a plugin users
// list: the snapshot puts it on those routes, after their authentication.
#include <memory>
#include <string_view>

#include "api/filter.h"
#include "api/filter_registry.h"
#include "config/model.h"

namespace portico::filters {

// Under this key in api::Services::shared: the UsageBook every snapshot's subscription
// filters record into (the portal reads it).
inline constexpr std::string_view kUsageBookKey = "portal-usage";

// Null when no plan lists `api`. The plan's limits and quota are rate-limit and quota filters
// built from `registry` (errors reported under the plan's path).
std::shared_ptr<const api::FilterFactory> makeSubscriptionFactory(
    const config::ApiConfig& api, const config::Config& cfg, const api::FilterRegistry& registry,
    api::FilterBuildContext& context);

}  // namespace portico::filters
