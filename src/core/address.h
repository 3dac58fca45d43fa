#pragma once
// host:port parsing and blocking resolution (used at config load and on the DNS refresh
// interval, on the control thread, never on a worker).
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace portico {

struct HostPort {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
};

Result<HostPort> parseHostPort(const std::string& text);

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1:8080" or "[::1]:8080"
  bool operator==(const SocketAddress& o) const { return text == o.text; }
};

// Numeric addresses resolve without DNS. Returns every address, IPv4 first.
Result<std::vector<SocketAddress>> resolve(const HostPort& hp);

}  // namespace portico
