#include "store/entity_set.h"

#include <algorithm>

namespace portico::store {

namespace {
// One per kind, in kKinds' order (checked below).
constexpr std::array<std::string_view, kKinds.size()> kNames = {
    "upstreams", "routes", "consumers", "plugins", "apis", "plans", "subscriptions", "accounts"};
static_assert(std::none_of(kNames.begin(), kNames.end(),
                           [](std::string_view n) { return n.empty(); }),
              "every kind has a name");
}  // namespace

std::string_view kindName(Kind kind) {
  return kNames[static_cast<std::size_t>(kind)];
}

std::optional<Kind> kindFromName(std::string_view name) {
  for (const Kind k : kKinds)
    if (kindName(k) == name) return k;
  return std::nullopt;
}

nlohmann::json withMetadata(const Entity& entity) {
  nlohmann::json out = entity.body;
  out["revision"] = entity.revision;
  if (!entity.created_at.empty()) out["created_at"] = entity.created_at;
  if (!entity.updated_at.empty()) out["updated_at"] = entity.updated_at;
  return out;
}

const Entity* EntitySet::find(Kind kind, std::string_view name) const {
  const auto& positions = positions_[index(kind)];
  const auto it = positions.find(std::string(name));
  return it == positions.end() ? nullptr : &kinds_[index(kind)][it->second];
}

void EntitySet::put(Kind kind, Entity entity) {
  auto& list = kinds_[index(kind)];
  auto& positions = positions_[index(kind)];
  if (const auto it = positions.find(entity.name); it != positions.end()) {
    Entity& e = list[it->second];
    if (!e.created_at.empty()) entity.created_at = e.created_at;
    e = std::move(entity);
    return;
  }
  positions.emplace(entity.name, list.size());
  list.push_back(std::move(entity));
}

bool EntitySet::erase(Kind kind, std::string_view name) {
  auto& list = kinds_[index(kind)];
  auto& positions = positions_[index(kind)];
  const auto it = positions.find(std::string(name));
  if (it == positions.end()) return false;
  const std::size_t at = it->second;
  positions.erase(it);
  list.erase(list.begin() + static_cast<std::ptrdiff_t>(at));
  for (std::size_t i = at; i < list.size(); ++i) positions[list[i].name] = i;
  return true;
}

void EntitySet::setRevision(Kind kind, std::string_view name, std::uint64_t revision) {
  const auto& positions = positions_[index(kind)];
  if (const auto it = positions.find(std::string(name)); it != positions.end())
    kinds_[index(kind)][it->second].revision = revision;
}

std::size_t EntitySet::size() const {
  std::size_t n = 0;
  for (const auto& list : kinds_) n += list.size();
  return n;
}

nlohmann::json EntitySet::document() const {
  nlohmann::json root = nlohmann::json::object();
  for (const Kind k : kKinds) {
    const auto& list = kinds_[index(k)];
    if (list.empty()) continue;
    auto& out = root[std::string(kindName(k))] = nlohmann::json::array();
    for (const auto& e : list) out.push_back(e.body);
  }
  return root;
}

EntitySet EntitySet::fromDocument(const nlohmann::json& root) {
  EntitySet set;
  if (!root.is_object()) return set;
  for (const Kind k : kKinds) {
    const auto it = root.find(std::string(kindName(k)));
    if (it == root.end() || !it->is_array()) continue;
    for (const auto& body : *it) {
      if (!body.is_object() || !body.contains("name") || !body["name"].is_string()) continue;
      Entity e;
      e.name = body["name"].get<std::string>();
      e.body = body;
      stripMetadata(e.body);
      set.put(k, std::move(e));  // (a repeated name: the last wins; compiling reports it)
    }
  }
  return set;
}

std::vector<std::pair<std::string, std::string>> duplicateNames(const nlohmann::json& root) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!root.is_object()) return out;
  for (const Kind k : kKinds) {
    const auto it = root.find(std::string(kindName(k)));
    if (it == root.end() || !it->is_array()) continue;
    std::unordered_map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& body = (*it)[i];
      if (!body.is_object() || !body.contains("name") || !body["name"].is_string()) continue;
      const auto [at, fresh] = seen.emplace(body["name"].get<std::string>(), i);
      if (!fresh)
        out.emplace_back(std::string(kindName(k)) + "[" + std::to_string(i) + "].name",
                         "duplicate name \"" + at->first + "\" (also " + std::string(kindName(k)) +
                             "[" + std::to_string(at->second) + "])");
    }
  }
  return out;
}

void stripMetadata(nlohmann::json& object) {
  if (!object.is_object()) return;
  object.erase("revision");
  object.erase("created_at");
  object.erase("updated_at");
}

nlohmann::json summary(const Plan& plan) {
  const auto list = [](const std::vector<Change>& changes) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : changes) out.push_back({{"kind", kindName(c.kind)}, {"name", c.name}});
    return out;
  };
  return {
      {"create", list(plan.create)}, {"update", list(plan.update)}, {"delete", list(plan.remove)}};
}

std::vector<Change> Plan::all() const {
  std::vector<Change> out = create;
  out.insert(out.end(), update.begin(), update.end());
  out.insert(out.end(), remove.begin(), remove.end());
  return out;
}

bool hasLabels(const nlohmann::json& body, const Labels& labels) {
  const auto it = body.find("labels");
  for (const auto& [k, v] : labels) {
    if (it == body.end() || !it->is_object()) return false;
    const auto l = it->find(k);
    if (l == it->end() || !l->is_string() || l->get<std::string>() != v) return false;
  }
  return true;
}

Plan plan(const EntitySet& from, const EntitySet& to, bool prune, const Labels& prune_labels) {
  Plan p;
  for (const Kind k : kKinds) {
    for (const auto& e : to.list(k)) {
      const Entity* old = from.find(k, e.name);
      if (!old)
        p.create.push_back({k, e.name, e.body});
      else if (old->body != e.body)
        p.update.push_back({k, e.name, e.body});
    }
    if (!prune) continue;
    for (const auto& e : from.list(k))
      if (!to.find(k, e.name) && hasLabels(e.body, prune_labels))
        p.remove.push_back({k, e.name, std::nullopt});
  }
  return p;
}

EntitySet::Undo EntitySet::apply(const std::vector<Change>& changes, std::uint64_t revision,
                                 const std::string& now) {
  Undo undo;
  undo.revision = this->revision;
  for (const auto& c : changes) {
    Undo::Before before{c.kind, c.name, std::nullopt, 0};
    const auto& positions = positions_[index(c.kind)];
    if (const auto it = positions.find(c.name); it != positions.end()) {
      before.position = it->second;
      before.entity = kinds_[index(c.kind)][it->second];
    }
    undo.before.push_back(std::move(before));
    if (!c.body) {
      erase(c.kind, c.name);
      continue;
    }
    // created_at is kept from the old entity by put()
    put(c.kind, Entity{c.name, *c.body, revision, now, now});
  }
  this->revision = revision;
  return undo;
}

void EntitySet::revert(Undo undo) {
  for (auto b = undo.before.rbegin(); b != undo.before.rend(); ++b) {
    if (!b->entity) {
      erase(b->kind, b->name);
      continue;
    }
    auto& list = kinds_[index(b->kind)];
    auto& positions = positions_[index(b->kind)];
    if (const auto it = positions.find(b->name); it != positions.end()) {
      list[it->second] = std::move(*b->entity);
      continue;
    }
    // Deleted by the write: back at its place.
    const std::size_t at = std::min(b->position, list.size());
    list.insert(list.begin() + static_cast<std::ptrdiff_t>(at), std::move(*b->entity));
    for (std::size_t i = at; i < list.size(); ++i) positions[list[i].name] = i;
  }
  revision = undo.revision;
}

std::vector<std::pair<std::string, std::vector<const nlohmann::json*>>> EntitySet::sections()
    const {
  std::vector<std::pair<std::string, std::vector<const nlohmann::json*>>> out;
  for (const Kind k : kKinds) {
    const auto& list = kinds_[index(k)];
    auto& bodies =
        out.emplace_back(std::string(kindName(k)), std::vector<const nlohmann::json*>()).second;
    bodies.reserve(list.size());
    for (const auto& e : list) bodies.push_back(&e.body);
  }
  return out;
}

EntitySet applyChanges(const EntitySet& set, const std::vector<Change>& changes,
                       std::uint64_t revision, const std::string& now) {
  EntitySet out = set;
  out.apply(changes, revision, now);
  return out;
}

}  // namespace portico::store
