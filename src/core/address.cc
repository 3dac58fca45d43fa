#include "core/address.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>

namespace portico {

Result<HostPort> parseHostPort(const std::string& text) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return makeError("expected [ipv6]:port, got \"" + text + "\"");
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return makeError("expected host:port, got \"" + text + "\"");
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) return makeError("missing host in \"" + text + "\"");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return makeError("invalid port in \"" + text + "\"");
  int p = std::stoi(port);
  if (p > 65535) return makeError("port out of range in \"" + text + "\"");
  hp.port = static_cast<std::uint16_t>(p);
  return hp;
}

Result<std::vector<SocketAddress>> resolve(const HostPort& hp) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  int rc = ::getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return makeError("cannot resolve \"" + hp.host + "\": " + gai_strerror(rc));
  std::vector<SocketAddress> out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    SocketAddress a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = static_cast<socklen_t>(ai->ai_addrlen);
    char buf[INET6_ADDRSTRLEN] = {};
    if (ai->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, buf, sizeof buf);
      a.text = std::string(buf) + ":" + port;
    } else if (ai->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, buf,
                sizeof buf);
      a.text = "[" + std::string(buf) + "]:" + port;
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
  }
  ::freeaddrinfo(res);
  std::stable_sort(out.begin(), out.end(), [](const SocketAddress& a, const SocketAddress& b) {
    return a.storage.ss_family == AF_INET && b.storage.ss_family != AF_INET;
  });
  if (out.empty()) return makeError("no address for \"" + hp.host + "\"");
  return out;
}

}  // namespace portico
