#pragma once
// The entities an operator manages at run time — upstreams, routes, consumers, global plugins
// and apis — as plain JSON objects of exactly the file's shape, each with the revision that
// last changed it. The control thread holds one EntitySet; a write makes a changed copy,
// which is compiled (validated) before it is stored and published.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace portico::store {

enum class Kind { Upstreams, Routes, Consumers, Plugins, Apis, Plans, Subscriptions, Accounts };
// In the order the declarative document lists them (what a route names comes before it).
inline constexpr std::array<Kind, 8> kKinds = {Kind::Upstreams,     Kind::Routes,  Kind::Consumers,
                                               Kind::Plugins,       Kind::Apis,    Kind::Plans,
                                               Kind::Subscriptions, Kind::Accounts};

std::string_view kindName(Kind kind);  // "routes", ...: the document's key and the API's path
std::optional<Kind> kindFromName(std::string_view name);

struct Entity {
  std::string name;
  nlohmann::json body;  // the object as the file has it (its `name` included, `labels` too)
  std::uint64_t revision = 0;
  std::string created_at;  // RFC 3339, UTC
  std::string updated_at;
};

// The object with its read-only fields: revision, and created_at / updated_at when known (the
// file store does not know them).
nlohmann::json withMetadata(const Entity& entity);

struct Change;

class EntitySet {
 public:
  std::uint64_t revision = 0;  // of the whole set: the last write's

  const std::vector<Entity>& list(Kind kind) const { return kinds_[index(kind)]; }
  const Entity* find(Kind kind, std::string_view name) const;
  // Replaces the entity of that name in place (keeping its position and created_at) or appends.
  void put(Kind kind, Entity entity);
  bool erase(Kind kind, std::string_view name);
  void setRevision(Kind kind, std::string_view name, std::uint64_t revision);
  std::size_t size() const;

  // What apply() replaced, for revert() when the write is refused.
  struct Undo {
    struct Before {
      Kind kind;
      std::string name;
      std::optional<Entity> entity;  // none: the change created it
      std::size_t position = 0;
    };
    std::uint64_t revision = 0;
    std::vector<Before> before;
  };
  // `changes` applied in place (a write to one of 10,000 routes copies one entity, not the
  // set); changed entities get `revision` and `now`, and so does the set.
  Undo apply(const std::vector<Change>& changes, std::uint64_t revision, const std::string& now);
  void revert(Undo undo);

  // {"upstreams": [...], "routes": [...], ...}: kinds without entities are left out; the
  // objects without their metadata (a declarative document).
  nlohmann::json document() const;
  // The same lists as pointers to the bodies held here, {"routes", [...]} for each kind (with
  // the empty ones): what the config parser reads in place of a document's lists. Valid until
  // the set changes.
  std::vector<std::pair<std::string, std::vector<const nlohmann::json*>>> sections() const;
  // Moves the entity sections of `root` into a set (bodies as they are; names taken from each
  // object's `name`). Objects without a string name are skipped: compiling the document
  // reports them.
  static EntitySet fromDocument(const nlohmann::json& root);

 private:
  static std::size_t index(Kind kind) { return static_cast<std::size_t>(kind); }
  std::array<std::vector<Entity>, kKinds.size()> kinds_;
  // Name -> position in kinds_, so a 10,000-route plan or apply is not quadratic.
  std::array<std::unordered_map<std::string, std::size_t>, kKinds.size()> positions_;
};

// Objects of `root`'s entity lists whose name an earlier object of the same kind has:
// {"routes[3].name", "duplicate name \"x\""} pairs (fromDocument keeps only the last).
std::vector<std::pair<std::string, std::string>> duplicateNames(const nlohmann::json& root);

// The read-only fields an object may carry in answers; dropped from what clients send.
void stripMetadata(nlohmann::json& object);

// What a write changes: per kind and name, the new body, or nullopt for a deletion.
struct Change {
  Kind kind;
  std::string name;
  std::optional<nlohmann::json> body;
  // The revision of the object this change replaces or deletes as the writer saw it (0: it had
  // none), for stores that compare per object (etcd).
  std::uint64_t base_revision = 0;
};

// The changes that turn `from` into `to`. Bodies compare as JSON values (key order and
// metadata never make a difference). `prune`: objects `to` lacks are deleted — only those
// whose labels include every one of `prune_labels` when it is not empty.
struct Plan {
  std::vector<Change> create, update, remove;
  bool empty() const { return create.empty() && update.empty() && remove.empty(); }
  std::vector<Change> all() const;
};
using Labels = std::vector<std::pair<std::string, std::string>>;
// Whether an object's `labels` include every one of `labels`.
bool hasLabels(const nlohmann::json& body, const Labels& labels);
// {"create": [{"kind", "name"}…], "update": […], "delete": […]}: how answers and the CLI show a
// plan.
nlohmann::json summary(const Plan& plan);
Plan plan(const EntitySet& from, const EntitySet& to, bool prune, const Labels& prune_labels);

// A copy of `set` with `changes` applied (EntitySet::apply).
EntitySet applyChanges(const EntitySet& set, const std::vector<Change>& changes,
                       std::uint64_t revision, const std::string& now);

}  // namespace portico::store
