// portico run|validate|apply|diff|dump|version — see docs/config.md, docs/admin-api.md and
// DESIGN.md section 6.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "admin/admin_cli.h"
#include "server/server.h"
#include "tls/openssl_memory.h"

#ifndef PORTICO_VERSION
#define PORTICO_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  portico::tls::useCachedMemory();  // before OpenSSL's first allocation
  CLI::App app{"Portico, an API gateway"};
  app.require_subcommand(1);
  std::string config_path;
  auto* run = app.add_subcommand("run", "serve; SIGHUP or a file change reloads; SIGTERM drains");
  run->add_option("-c,--config", config_path, "config file (YAML or JSON)")->required();
  auto* validate = app.add_subcommand("validate", "check a config; print every error");
  validate->add_option("-c,--config", config_path, "config file (YAML or JSON)")->required();
  auto* version = app.add_subcommand("version", "print the version");

  portico::admin::CliTarget target;
  if (const char* t = std::getenv("PORTICO_ADMIN_TOKEN")) target.token = t;
  std::string file;
  bool dry_run = false, prune = false, rollout = false;
  auto withTarget = [&](CLI::App* c) {
    c->add_option("--admin", target.admin, "the Admin API's base URL")->default_val(target.admin);
    c->add_option("--token", target.token, "bearer token (or PORTICO_ADMIN_TOKEN)");
  };
  auto* apply = app.add_subcommand("apply", "apply an entities file through the Admin API");
  apply->add_option("-f,--file", file, "entities (YAML or JSON)")->required();
  apply->add_flag("--dry-run", dry_run, "print the plan, change nothing");
  apply->add_flag("--prune", prune, "delete what the file lacks");
  apply->add_flag("--rollout", rollout,
                  "release it step by step (server.rollout), rolled back if it does worse");
  withTarget(apply);
  auto* diff = app.add_subcommand("diff", "print what apply would change (exit 1 if anything)");
  diff->add_option("-f,--file", file, "entities (YAML or JSON)")->required();
  diff->add_flag("--prune", prune, "count what the file lacks as deletions");
  withTarget(diff);
  diff->add_option("-c,--config", target.config, "compare with what this config keeps, offline");
  auto* dump = app.add_subcommand("dump", "print every entity as YAML");
  withTarget(dump);
  dump->add_option("-c,--config", target.config, "read what this config keeps, offline");
  portico::admin::ImportFlags import_flags;
  auto* import_cmd = app.add_subcommand("import", "publish an API from a description");
  auto* openapi = import_cmd->add_subcommand("openapi", "an OpenAPI 3.0 or 3.1 spec");
  import_cmd->require_subcommand(1);
  openapi->add_option("spec", file, "the spec (YAML or JSON)")->required();
  openapi->add_option("--api", import_flags.api, "the API's name")->required();
  openapi->add_option("--upstream", import_flags.upstream, "default: from servers[0]");
  openapi->add_option("--state", import_flags.state, "draft|published|deprecated|retired");
  openapi->add_option("--base-path", import_flags.base_path, "default /");
  openapi->add_flag("--dry-run", import_flags.dry_run, "print the plan, change nothing");
  openapi->add_flag("--mock", import_flags.mock, "answer from the spec's examples");
  withTarget(openapi);
  CLI11_PARSE(app, argc, argv);

  if (*apply)
    return portico::admin::applyFile(target, file, dry_run, prune, rollout, std::cout, std::cerr);
  if (*diff) return portico::admin::diffFile(target, file, prune, std::cout, std::cerr);
  if (*dump) return portico::admin::dumpConfig(target, std::cout, std::cerr);
  if (*import_cmd)
    return portico::admin::importSpecFile(target, file, import_flags, std::cout, std::cerr);

  if (*version) {
    std::cout << "portico " << PORTICO_VERSION << "\n";
    return 0;
  }
  if (*validate) {
    auto r = portico::server::validate(config_path);
    if (!r) {
      const std::string& message = r.error().message;  // a diagnostics list ends its lines
      std::cerr << message << (message.ends_with('\n') ? "" : "\n");
      return 1;
    }
    std::cout << *r << "\n";
    return 0;
  }
  return portico::server::run(config_path);
}
