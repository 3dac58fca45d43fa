#include "config/model_parser.h"
#include "config/reader.h"
#include "core/address.h"
#include "redis/client.h"

namespace portico::redis {

std::string Settings::key() const {
  std::string k = address;
  for (const auto& s : sentinels) k += "|s=" + s;
  k +=
      "|m=" + master_name + "|u=" + username + "|p=" + password + "|db=" + std::to_string(database);
  if (tls)
    k += "|tls=" + tls->ca + "," + tls->server_name + "," + (tls->verify ? "v" : "n") + "," +
         tls->client_cert + "," + tls->client_key;
  k += "|t=" + std::to_string(timeout.count()) + "," + std::to_string(connect_timeout.count());
  return k;
}

namespace {

void checkAddress(const std::string& address, const std::string& path, config::Diagnostics& diag) {
  auto hp = parseHostPort(address);
  if (!hp) diag.add(path, "not a host:port address: " + hp.error().message);
}

}  // namespace

std::optional<Settings> parseSettings(const nlohmann::json* node, const std::string& path,
                                      config::Diagnostics& diag) {
  const std::size_t errors = diag.items().size();
  if (!node || !node->is_object()) {
    diag.add(path, "give redis: { address: host:port } or redis: { sentinel: {...} }");
    return std::nullopt;
  }
  Settings s;
  config::ObjectReader r(*node, path, diag);
  r.string("address", s.address);
  if (const auto* sn = r.get("sentinel")) {
    config::ObjectReader sr(*sn, r.childPath("sentinel"), diag);
    sr.stringList("addresses", s.sentinels);
    sr.string("master", s.master_name, true);
    sr.finish();
    if (s.sentinels.empty()) diag.add(sr.childPath("addresses"), "give at least one sentinel");
    for (std::size_t i = 0; i < s.sentinels.size(); ++i)
      checkAddress(s.sentinels[i], config::indexPath(sr.childPath("addresses"), i), diag);
  }
  r.string("username", s.username);
  r.string("password", s.password);
  r.number("database", 0, 15, s.database);
  if (const auto* t = r.get("tls")) s.tls = config::parseClientTls(*t, r.childPath("tls"), diag);
  r.duration("timeout", s.timeout);
  r.duration("connect_timeout", s.connect_timeout);
  r.finish();
  if (s.address.empty() == s.sentinels.empty()) {
    diag.add(path, "give either address or sentinel");
  } else if (!s.address.empty()) {
    checkAddress(s.address, r.childPath("address"), diag);
  }
  if (s.timeout.count() <= 0) diag.add(r.childPath("timeout"), "must be positive");
  if (s.connect_timeout.count() <= 0) diag.add(r.childPath("connect_timeout"), "must be positive");
  if (diag.items().size() != errors) return std::nullopt;
  return s;
}

}  // namespace portico::redis
