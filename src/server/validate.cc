// `portico validate`: the config compiled exactly as `portico run` would, with the store's
// entities when the file names one (nothing is written).
#include <filesystem>

#include "config/config_tree.h"
#include "core/read_file.h"
#include "filters/builtins.h"
#include "observability/log_writer.h"
#include "server/entity_source.h"
#include "server/server.h"
#include "snapshot/snapshot.h"

namespace portico::server {

Result<std::string> validate(const std::string& config_path) {
  auto text = readFile(config_path);
  if (!text) return text.error();
  api::FilterRegistry registry;
  filters::registerBuiltins(registry);
  observability::LogWriter logs;
  snapshot::SnapshotInputs in;
  in.text = std::move(*text);
  in.file = config_path;
  in.env = config::processEnvironment();
  in.registry = &registry;
  in.services = &logs;
  in.version = 1;
  auto snap = snapshot::buildSnapshot(in);
  if (!snap) return snap.error();
  std::string source;
  if ((*snap)->config.store.type == config::StoreConfig::Type::Sqlite &&
      !std::filesystem::exists((*snap)->config.store.path)) {
    source = " (store: sqlite, no database yet: the file's entities would seed it)";
  } else if ((*snap)->config.store.type != config::StoreConfig::Type::File) {
    // The database's entities with the file's sections, compiled as `portico run` would
    // (nothing is written: a seed is only checked).
    config::ConfigTree tree;
    config::Diagnostics diag;
    config::parseConfigText(in.text, config_path, in.env, tree, diag);
    EntitySource entities;
    auto composed = entities.compose((*snap)->config.store, tree.root, true);
    if (!composed) return composed.error();
    entities.inputsFor(composed->entities, in);
    snap = snapshot::buildSnapshot(in);
    if (!snap) return snap.error();
    source = " (store: " + std::string(entities.store().type()) + ", revision " +
             std::to_string(composed->entities.revision) + ")";
  }
  return "config ok: " + std::to_string((*snap)->config.routes.size()) + " routes, " +
         std::to_string((*snap)->config.upstreams.size()) + " upstreams, " +
         std::to_string((*snap)->config.listeners.size()) + " listeners" + source;
}

}  // namespace portico::server
