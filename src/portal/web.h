#pragma once
// Small pieces of the portal's HTTP side that its JSON API and its OpenID Connect sign-in share.
#include <string>
#include <string_view>

#include "admin/admin_server.h"

namespace portico::portal {

// The value of cookie `name` in the request's Cookie header, "" when absent.
std::string cookieValue(const admin::AdminRequest& request, std::string_view name);

// Random bytes as lower-case hex: session ids, CSRF tokens, OAuth state and PKCE verifiers.
std::string hexToken(std::string_view random_bytes);

}  // namespace portico::portal
