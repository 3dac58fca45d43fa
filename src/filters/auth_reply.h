#pragma once
// Refusals of the auth and access filters: JSON with the request id, the scheme that failed in
// WWW-Authenticate, and a message that never says which part of a credential was wrong.
#include <string_view>

#include "api/filter.h"
#include "http/url.h"

namespace portico::filters {

// 401 for `why` Missing/InvalidCredentials (returns AuthFailed: another auth filter may still
// accept the request), 403 otherwise (returns Reply).
api::FilterStatus refuse(api::RequestContext& ctx, api::AuthFailure why,
                         std::string_view www_authenticate = {});

// A JSON error answered locally: {"error", "status", "request_id"}; sets ctx.error.
api::FilterStatus replyError(api::RequestContext& ctx, int status, std::string_view message);

// 503 when the service an auth filter depends on cannot answer (fail_closed policies).
api::FilterStatus unavailable(api::RequestContext& ctx, std::string_view message);

using http::findQueryParam;
using http::QueryParam;
// `query` without the pair found above (and its separator).
void eraseQueryParam(std::string& query, const QueryParam& p);
// Replaces the value of parameter `name` in a request target ("/p?a=1&key=s") with "***", so
// that a credential sent in the query never reaches a log line.
void maskQueryParam(std::string& target, std::string_view name);

}  // namespace portico::filters
