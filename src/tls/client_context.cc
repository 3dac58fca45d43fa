#include "tls/client_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl/context.hpp>

#include "tls/openssl_util.h"

namespace portico::tls {
namespace {

bool isIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

struct ClientContext::Impl {
  config::UpstreamTlsConfig cfg;
  std::unique_ptr<boost::asio::ssl::context> ctx;
};

ClientContext::ClientContext() : impl_(std::make_unique<Impl>()) {}
ClientContext::~ClientContext() = default;

Result<std::shared_ptr<const ClientContext>> ClientContext::build(
    const config::UpstreamTlsConfig& cfg) {
  std::shared_ptr<ClientContext> cc(new ClientContext());
  cc->impl_->cfg = cfg;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return makeError("cannot create a TLS context: " + opensslError());
  cc->impl_->ctx = std::make_unique<boost::asio::ssl::context>(ctx);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  if (cfg.verify) {
    int ok = cfg.ca.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                            : SSL_CTX_load_verify_locations(ctx, cfg.ca.c_str(), nullptr);
    if (ok != 1) return makeError("cannot load CA " + cfg.ca + ": " + opensslError());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.client_cert.empty()) {
    if (auto ok = useCertificate(ctx, cfg.client_cert, cfg.client_key); !ok) return ok.error();
  }
  if (cfg.alpn_h2) {
    static const unsigned char kH2[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2);
  }
  return std::shared_ptr<const ClientContext>(std::move(cc));
}

boost::asio::ssl::context& ClientContext::context() const {
  return *impl_->ctx;
}
const config::UpstreamTlsConfig& ClientContext::config() const {
  return impl_->cfg;
}

bool ClientContext::prepare(SSL* ssl, const std::string& host) const {
  const std::string& name = impl_->cfg.server_name.empty() ? host : impl_->cfg.server_name;
  if (!isIpAddress(name) && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  if (!impl_->cfg.verify) return true;
  if (isIpAddress(name))
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  return SSL_set1_host(ssl, name.c_str()) == 1;
}

}  // namespace portico::tls
