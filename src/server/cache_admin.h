#pragma once
// The response cache on the admin listener: POST /cache/purge and its /metrics series.
#include <string>

#include "admin/admin_server.h"

namespace portico::api {
class Services;
}

namespace portico::server {

// `{"key": "GET host/path?query"}`, `{"tag": …}`, `{"prefix": "/users/"}` or `{"all": true}`;
// answers `{"purged": N}`. Refused (403) unless the admin listener is on a loopback address
// (admin tokens come with the Admin API).
admin::AdminResponse purgeCache(api::Services& services, const std::string& body,
                                const std::string& admin_listen);

// The cache's series, when a cache filter is configured.
void appendCacheMetrics(api::Services& services, std::string& out);

// Whether `listen` ("127.0.0.1:9901", "[::1]:9901", "localhost:9901") is a loopback address.
bool isLoopbackListen(const std::string& listen);

}  // namespace portico::server
