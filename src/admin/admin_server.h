#pragma once
// The admin listener (127.0.0.1 by default): /healthz, /readyz, /config, /metrics, /upstreams,
// /api/stats and the dashboard. Runs on the
// control thread's loop, never on a worker.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace boost::asio {
class io_context;
}

namespace portico::tls {
class ServerContext;
}

namespace portico::admin {

struct AdminResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond type and length
};

struct AdminRequest {
  std::string method;
  std::string path;    // without the query
  std::string query;   // after '?', without it
  std::string accept;  // content negotiation: OpenMetrics for /metrics
  std::string body;    // with Content-Length, up to kMaxAdminBody
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string client_ip;

  const std::string* header(std::string_view lower_name) const {
    for (const auto& [n, v] : headers)
      if (n == lower_name) return &v;
    return nullptr;
  }
};
constexpr std::size_t kMaxAdminBody = 16 * 1024 * 1024;

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;
// A handler that may answer later (after an outgoing call): it calls `reply` once, from any
// thread; the answer is written from the server's loop.
using AsyncAdminHandler =
    std::function<void(const AdminRequest&, std::function<void(AdminResponse)> reply)>;

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, AdminHandler handler);
  AdminServer(boost::asio::io_context& io, AsyncAdminHandler handler);
  ~AdminServer();
  // `tls`: serve HTTPS with that context (certificates, client certificates); null: HTTP.
  Result<bool> listen(const std::string& address,
                      std::shared_ptr<const tls::ServerContext> tls = nullptr);
  void stop();
  // The port listened on (the one given, or the kernel's choice for port 0); 0 before listen.
  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::admin
