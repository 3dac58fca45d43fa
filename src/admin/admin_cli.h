#pragma once
// `portico apply | diff | dump`: the declarative workflow against a running Portico's Admin API
// (docs/admin-api.md). Each returns the process exit code and prints to the given streams.
#include <iosfwd>
#include <string>

namespace portico::admin {

struct CliTarget {
  std::string admin = "http://127.0.0.1:9901";  // --admin
  std::string token;                            // --token (or PORTICO_ADMIN_TOKEN)
  // -c: read the entities where that config keeps them (its file, or its SQLite database)
  // instead of asking a running Portico (dump and diff only).
  std::string config;
};

// POST /admin/v1/config; `prune`: delete what the file lacks; `rollout`: as a release
// (?rollout=true), committed once promoted. 0 applied (or nothing to do),
// 1 refused (errors printed), 2 the Admin API could not be reached.
int applyFile(const CliTarget& target, const std::string& file, bool dry_run, bool prune,
              bool rollout, std::ostream& out, std::ostream& err);
// The plan only: 0 when nothing differs, 1 when something does (or errors), 2 unreachable.
int diffFile(const CliTarget& target, const std::string& file, bool prune, std::ostream& out,
             std::ostream& err);
struct ImportFlags {
  std::string api, upstream, state, base_path;
  bool dry_run = false, mock = false;
};
// `portico import openapi SPEC`: POST /admin/v1/apis/{api}/openapi; exit codes as applyFile.
int importSpecFile(const CliTarget& target, const std::string& spec, const ImportFlags& flags,
                   std::ostream& out, std::ostream& err);

// GET /admin/v1/config as YAML: 0, or 2 when unreachable / refused.
int dumpConfig(const CliTarget& target, std::ostream& out, std::ostream& err);

}  // namespace portico::admin
