#pragma once
// Pieces the config parser's files share (model_parser.cc, upstream_parser.cc,
// portal_parser.cc); not for other subsystems.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/diagnostics.h"
#include "config/model.h"
#include "config/model_parser.h"
#include "config/reader.h"

namespace portico::config {

// Calls f(item, path) for each item of the list under `key`, or of the external section of
// that name when `sections` has one.
template <class F>
void forEachItem(ObjectReader& parent, std::string_view key, F&& f,
                 const ExternalSections* sections = nullptr) {
  if (sections) {
    for (const auto& [name, items] : *sections) {
      if (name != key) continue;
      for (std::size_t i = 0; i < items.size(); ++i) f(*items[i], indexPath(std::string(key), i));
      return;
    }
  }
  const nlohmann::json* list = parent.get(key);
  if (!list) return;
  std::string path = parent.childPath(key);
  if (!list->is_array()) {
    parent.diagnostics().add(path, "expected a list");
    return;
  }
  for (size_t i = 0; i < list->size(); ++i) f((*list)[i], indexPath(path, i));
}

// `labels`: a map of strings, for selecting objects (Admin API filters, pruning); never
// compiled into anything.
void readLabels(ObjectReader& r, Labels& out);

TlsConfig parseTls(const nlohmann::json& j, const std::string& path, Diagnostics& d);
// One `upstreams[]` entry (upstream_parser.cc).
void parseUpstream(const nlohmann::json& j, const std::string& path, Diagnostics& d,
                   UpstreamConfig& u);

// The developer portal's parts (portal_parser.cc, ADR 0015).
PortalConfig parsePortal(const nlohmann::json& j, const std::string& path, Diagnostics& d);
PlanConfig parsePlan(const nlohmann::json& j, const std::string& path, Diagnostics& d);
SubscriptionConfig parseSubscription(const nlohmann::json& j, const std::string& path,
                                     Diagnostics& d);
AccountConfig parseAccount(const nlohmann::json& j, const std::string& path, Diagnostics& d);
// Plans list APIs that exist; subscriptions name an application, an API and a plan listing it.
void checkPortalEntities(const Config& c, Diagnostics& d);

}  // namespace portico::config
