#include "admin/release_record.h"

namespace portico::admin {

using nlohmann::json;

json ReleaseRecord::toJson() const {
  json changed = json::array();
  for (const auto& c : changes)
    changed.push_back({{"kind", store::kindName(c.kind)},
                       {"name", c.name},
                       {"body", c.body ? *c.body : json(nullptr)},
                       {"base_revision", c.base_revision}});
  return {{"id", id},
          {"node", node},
          {"actor", actor},
          {"created_at", created_at},
          {"updated_at", updated_at},
          {"base_revision", base_revision},
          {"changes", std::move(changed)},
          {"percent", percent},
          {"state", state},
          {"reason", reason},
          {"intervals", intervals},
          {"revision", revision}};
}

std::optional<ReleaseRecord> ReleaseRecord::fromJson(const json& value) {
  if (!value.is_object() || !value.contains("id") || !value["id"].is_string()) return std::nullopt;
  try {
    ReleaseRecord r;
    r.id = value.at("id").get<std::string>();
    r.node = value.value("node", "");
    r.actor = value.value("actor", "");
    r.created_at = value.value("created_at", "");
    r.updated_at = value.value("updated_at", "");
    r.base_revision = value.value("base_revision", std::uint64_t{0});
    r.percent = value.value("percent", 0);
    r.state = value.value("state", "");
    r.reason = value.value("reason", "");
    r.intervals = value.value("intervals", json::array());
    r.revision = value.value("revision", std::uint64_t{0});
    if (r.state != "progressing" && r.state != "promoted" && r.state != "rolled_back")
      return std::nullopt;
    for (const auto& c : value.value("changes", json::array())) {
      const auto kind = store::kindFromName(c.at("kind").get<std::string>());
      if (!kind) return std::nullopt;
      store::Change change{*kind, c.at("name").get<std::string>(), std::nullopt};
      if (const auto& body = c.at("body"); body.is_object()) change.body = body;
      change.base_revision = c.value("base_revision", std::uint64_t{0});
      r.changes.push_back(std::move(change));
    }
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace portico::admin
