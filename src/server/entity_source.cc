#include "server/entity_source.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>

#include "snapshot/snapshot.h"
#include "store/etcd_store.h"
#include "store/sqlite_store.h"

namespace portico::server {
namespace {

// {"revision": N, "entities": {"routes": [objects with their metadata], ...}}
Result<store::EntitySet> readCache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError("cannot read it");
  const auto root = nlohmann::json::parse(in, nullptr, false);
  if (!root.is_object() || !root.contains("entities")) return makeError("not a Portico cache");
  store::EntitySet set;
  for (const store::Kind k : store::kKinds) {
    const auto it = root["entities"].find(std::string(store::kindName(k)));
    if (it == root["entities"].end() || !it->is_array()) continue;
    for (const auto& object : *it) {
      if (!object.is_object() || !object.value("name", nlohmann::json()).is_string()) continue;
      store::Entity e;
      e.name = object["name"].get<std::string>();
      e.revision = object.value("revision", std::uint64_t{0});
      e.created_at = object.value("created_at", std::string());
      e.updated_at = object.value("updated_at", std::string());
      e.body = object;
      store::stripMetadata(e.body);
      set.put(k, std::move(e));
    }
  }
  set.revision = root.value("revision", std::uint64_t{0});
  return set;
}

}  // namespace

Result<EntitySource::Composed> EntitySource::compose(const config::StoreConfig& wanted,
                                                     const nlohmann::json& file_root,
                                                     bool startup) {
  if (store_ && (wanted.type != config_.type || wanted.path != config_.path ||
                 wanted.endpoints != config_.endpoints || wanted.prefix != config_.prefix))
    return makeError("store: the store cannot change while Portico runs (restart to change it)");
  if (!store_) {
    if (!startup) return makeError("store: not open");
    if (wanted.type == config::StoreConfig::Type::Sqlite) {
      auto opened = store::openSqliteStore(wanted.path);
      if (!opened) return makeError("store: " + opened.error().message);
      store_ = std::move(*opened);
    } else if (wanted.type == config::StoreConfig::Type::Etcd) {
      auto opened = store::openEtcdStore(wanted);
      if (!opened) return makeError("store: " + opened.error().message);
      store_ = std::move(*opened);
    } else {
      store_ = store::makeFileStore();
    }
    config_ = wanted;
  }
  Composed out;
  if (!database()) {
    out.entities = store::EntitySet::fromDocument(file_root);
    return out;
  }
  auto sections = file_root.is_object() ? file_root : nlohmann::json::object();
  std::string listed;
  for (const store::Kind k : store::kKinds) {
    const std::string key(store::kindName(k));
    const auto it = sections.find(key);
    if (it == sections.end()) continue;
    if (!it->empty()) listed += (listed.empty() ? "" : ", ") + key;
    sections.erase(it);
  }
  file_sections_ = std::make_shared<const nlohmann::json>(std::move(sections));
  auto stored = store_->load();
  if (!stored && startup && !config_.cache.empty()) {
    if (auto cached = readCache(config_.cache)) {
      spdlog::error(
          "store: {}: STARTING FROM THE CACHE {} (revision {}, possibly stale): writes are "
          "refused until the store is back",
          stored.error().message, config_.cache, cached->revision);
      stale_ = true;
      stored = std::move(*cached);
    } else {
      return makeError("store: " + stored.error().message + "; and the cache " + config_.cache +
                       ": " + cached.error().message);
    }
  }
  if (!stored) return makeError("store: " + stored.error().message);
  out.entities = std::move(*stored);
  if (!listed.empty()) {
    // (etcd's revision is the cluster's, never 0: there, no entity key is empty)
    const bool empty = out.entities.size() == 0 &&
                       (out.entities.revision == 0 || store_->type() == std::string_view("etcd"));
    if (!startup || !empty)
      return makeError("store: " + std::string(store_->type()) + " holds the entities (revision " +
                       std::to_string(out.entities.revision) + "), but the file still lists " +
                       listed + ": remove them from the file (the Admin API edits them now)");
    if (const auto dups = store::duplicateNames(file_root); !dups.empty())
      return makeError(dups.front().first + ": " + dups.front().second);
    const store::EntitySet seed = store::EntitySet::fromDocument(file_root);
    out.seed = store::plan(out.entities, seed, false, {}).all();
    out.entities = seed;
  }
  return out;
}

Result<store::EntitySet> EntitySource::commitSeed(Composed& composed, const std::string& now) {
  if (composed.seed.empty()) return composed.entities;
  auto revision = store_->commit(0, composed.seed, now);
  if (!revision) return makeError("store: seeding the database: " + revision.error().message);
  spdlog::info(
      "store: the database was empty: seeded it with the {} entities of the file "
      "(revision {}); remove them from the file now",
      composed.seed.size(), *revision);
  auto set = store::applyChanges(store::EntitySet{}, composed.seed, *revision, now);
  composed.seed.clear();
  return set;
}

nlohmann::json EntitySource::documentWith(const store::EntitySet& entities) const {
  nlohmann::json doc = *file_sections_;
  nlohmann::json lists = entities.document();
  for (auto& [key, value] : lists.items()) doc[key] = std::move(value);
  return doc;
}

void EntitySource::inputsFor(const store::EntitySet& entities, snapshot::SnapshotInputs& in) const {
  in.document = file_sections_;
  in.sections = entities.sections();
}

void EntitySource::saveCache(const store::EntitySet& entities) const {
  if (config_.cache.empty()) return;
  nlohmann::json lists = nlohmann::json::object();
  for (const store::Kind k : store::kKinds) {
    auto& out = lists[std::string(store::kindName(k))] = nlohmann::json::array();
    for (const auto& e : entities.list(k)) out.push_back(store::withMetadata(e));
  }
  const std::string tmp = config_.cache + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file << nlohmann::json{{"revision", entities.revision}, {"entities", std::move(lists)}}.dump();
    if (!file.flush()) {
      spdlog::warn("store: cannot write the cache {}", tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), config_.cache.c_str()) != 0)
    spdlog::warn("store: cannot replace the cache {}", config_.cache);
}

}  // namespace portico::server
