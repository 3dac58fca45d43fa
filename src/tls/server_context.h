#pragma once
// The TLS side of one listener: every certificate it serves, chosen by SNI (exact and wildcard
// names read from the certificates themselves, the first certificate as the default), the
// protocol versions and ciphers, ALPN, session resumption and client-certificate checks.
// Built on the control thread as part of a snapshot; immutable afterwards and shared by all
// workers (OpenSSL contexts are safe for concurrent handshakes).
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "core/result.h"

namespace boost::asio::ssl {
class context;
}
typedef struct ssl_st SSL;

namespace portico::tls {

class TicketKeys;

class ServerContext {
 public:
  // Loads and checks every certificate and key. The error names the file and OpenSSL's reason.
  // `tickets` (may be null: OpenSSL's own per-context keys) seals session tickets; it must
  // outlive the context.
  static Result<std::shared_ptr<const ServerContext>> build(const config::TlsConfig& cfg,
                                                            TicketKeys* tickets = nullptr);
  ~ServerContext();

  // The context new connections start with; SNI may switch a connection to another one.
  boost::asio::ssl::context& context() const;
  // Certificate, key and CA files, for change detection.
  const std::vector<std::string>& files() const;
  const config::TlsConfig& config() const;

 private:
  ServerContext();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What the handshake established about the client.
struct PeerIdentity {
  bool presented = false;  // the client sent a certificate
  bool verified = false;   // ... and it chains to the configured CA
  std::string subject;     // RFC 2253 form, e.g. "CN=alice,O=Example"
  std::string sans;        // DNS, email and URI SANs, comma-separated
  std::string alpn;        // negotiated protocol, e.g. "http/1.1"
};

PeerIdentity peerIdentity(SSL* ssl);

}  // namespace portico::tls
