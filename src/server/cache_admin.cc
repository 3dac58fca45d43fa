#include "server/cache_admin.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>

#include "core/address.h"
#include "filters/cache/cache_filter.h"
#include "filters/cache/cache_store.h"

namespace portico::server {
namespace {

admin::AdminResponse error(int status, const std::string& message) {
  nlohmann::json j{{"error", message}, {"status", status}};
  return {status, "application/json", j.dump(), {}};
}

}  // namespace

bool isLoopbackListen(const std::string& listen) {
  auto hp = parseHostPort(listen);
  if (!hp) return false;
  if (hp->host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, hp->host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, hp->host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

admin::AdminResponse purgeCache(api::Services& services, const std::string& body,
                                const std::string& admin_listen) {
  if (!isLoopbackListen(admin_listen))
    return error(403, "cache purge is accepted only on a loopback admin listener");
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || j.size() != 1)
    return error(400, R"(expected one of {"key": …}, {"tag": …}, {"prefix": …}, {"all": true})");
  filters::cache::Purge what;
  const auto only = j.begin();
  const std::string name = only.key();
  const nlohmann::json& value = only.value();
  if (name == "all") {
    if (value != true) return error(400, R"("all" must be true)");
    what.kind = filters::cache::Purge::Kind::All;
  } else {
    if (!value.is_string() || value.get<std::string>().empty())
      return error(400, "\"" + name + "\" must be a non-empty string");
    what.value = value.get<std::string>();
    if (name == "key") {
      what.kind = filters::cache::Purge::Kind::Key;
    } else if (name == "tag") {
      what.kind = filters::cache::Purge::Kind::Tag;
    } else if (name == "prefix") {
      what.kind = filters::cache::Purge::Kind::Prefix;
    } else {
      return error(400, "unknown purge \"" + name + "\" (key, tag, prefix, all)");
    }
  }
  const auto store = filters::processCacheStore(services, false);
  const std::size_t n = store ? store->purge(what) : 0;
  return {200, "application/json", nlohmann::json{{"purged", n}}.dump(), {}};
}

void appendCacheMetrics(api::Services& services, std::string& out) {
  if (const auto store = filters::processCacheStore(services, false)) store->appendMetrics(out);
}

}  // namespace portico::server
