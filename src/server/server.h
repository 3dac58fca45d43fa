#pragma once
// The control side of the process: loads and reloads the config, starts the workers and the
// admin listener, handles signals (SIGHUP reload, SIGTERM/SIGINT drain, SIGUSR1 reopen logs),
// watches the config file and refreshes DNS.
#include <string>

#include "core/result.h"

namespace portico::server {

// Serves until drained. Returns the process exit code.
int run(const std::string& config_path);

// Runs every stage of loading `config_path` except serving. Returns the error text on failure.
Result<std::string> validate(const std::string& config_path);

}  // namespace portico::server
