// portico run|validate|version — see docs/config.md and DESIGN.md section 6.
#include <iostream>

#include <CLI/CLI.hpp>

#include "server/server.h"

#ifndef PORTICO_VERSION
#define PORTICO_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Portico, an API gateway"};
  app.require_subcommand(1);
  std::string config_path;
  auto* run = app.add_subcommand("run", "serve; SIGHUP or a file change reloads; SIGTERM drains");
  run->add_option("-c,--config", config_path, "config file (YAML or JSON)")->required();
  auto* validate = app.add_subcommand("validate", "check a config; print every error");
  validate->add_option("-c,--config", config_path, "config file (YAML or JSON)")->required();
  auto* version = app.add_subcommand("version", "print the version");
  CLI11_PARSE(app, argc, argv);

  if (*version) {
    std::cout << "portico " << PORTICO_VERSION << "\n";
    return 0;
  }
  if (*validate) {
    auto r = portico::server::validate(config_path);
    if (!r) {
      std::cerr << r.error().message;
      return 1;
    }
    std::cout << *r << "\n";
    return 0;
  }
  return portico::server::run(config_path);
}
