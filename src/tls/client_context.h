#pragma once
// TLS towards an upstream: trust anchors, server-name verification, an optional client
// certificate (mTLS to the backend). Built per snapshot, immutable, shared by the workers.
#include <memory>
#include <string>

#include "config/model.h"
#include "core/result.h"

namespace boost::asio::ssl {
class context;
}
typedef struct ssl_st SSL;

namespace portico::tls {

class ClientContext {
 public:
  static Result<std::shared_ptr<const ClientContext>> build(const config::UpstreamTlsConfig& cfg);
  ~ClientContext();

  boost::asio::ssl::context& context() const;
  const config::UpstreamTlsConfig& config() const;
  // Sets SNI and, when verifying, the name the certificate must carry. `host` is the target's
  // host, used when no server_name is configured.
  bool prepare(SSL* ssl, const std::string& host) const;

 private:
  ClientContext();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::tls
