#pragma once
// Listening sockets, opened on the control thread so that a bind error is reported before the
// config is accepted. Each worker gets its own socket on the same address (SO_REUSEPORT), and
// the kernel spreads connections across them.
#include <string>

#include "core/result.h"

namespace portico::server {

// Returns a non-blocking listening socket bound to `address` ("host:port").
Result<int> openListener(const std::string& address, int backlog = 4096);

}  // namespace portico::server
