#include "tls/server_context.h"

#include "tls/ticket_keys.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/ssl/context.hpp>

#include <unordered_map>
#include "tls/openssl_util.h"

namespace portico::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 suites without DHE: forward secrecy and AEAD only (no CBC,
// so nothing for LUCKY13-style padding oracles). TLS 1.3 suites are all AEAD already.
const std::string kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// DNS names of a certificate: its DNS SANs, or its CN when it has none.
std::vector<std::string> dnsNames(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const auto* s = n->d.dNSName;
      names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        static_cast<size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

// `arg` is non-null when the listener offers h2: then it is preferred over http/1.1.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  static const unsigned char kBoth[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  const unsigned char* ours = arg ? kBoth : kBoth + 3;
  const unsigned int ours_len = arg ? sizeof kBoth : sizeof kBoth - 3;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Optional client authentication: accept any certificate at the TLS layer; the verification
// result is kept (SSL_get_verify_result) and requests are refused later with 401.
int acceptAnyCertificate(int, X509_STORE_CTX*) {
  return 1;
}

}  // namespace

struct ServerContext::Impl {
  config::TlsConfig cfg;
  std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts;  // one per certificate
  std::unordered_map<std::string, SSL_CTX*> exact;
  std::unordered_map<std::string, SSL_CTX*> wildcard;  // ".example.com" -> ctx
  std::vector<std::string> files;

  SSL_CTX* lookup(const std::string& host) const {
    if (auto it = exact.find(host); it != exact.end()) return it->second;
    auto dot = host.find('.');
    if (dot != std::string::npos) {
      if (auto it = wildcard.find(host.substr(dot)); it != wildcard.end()) return it->second;
    }
    return nullptr;
  }

  static int onServerName(SSL* ssl, int*, void* arg) {
    const auto* self = static_cast<const Impl*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
    SSL_CTX* ctx = self->lookup(lower(name));
    if (ctx && ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
  }

  Result<SSL_CTX*> makeContext(const config::CertificateConfig& cert) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return makeError("cannot create a TLS context: " + opensslError());
    contexts.push_back(std::make_unique<boost::asio::ssl::context>(ctx));  // owns ctx from here
    SSL_CTX_set_min_proto_version(ctx, cfg.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    // A client's FIN without close_notify (many clients close that way, some after half-closing
    // to read their answers) is the end of the connection, as nginx takes it: OpenSSL 3 would
    // otherwise answer it with a decode_error alert. A request cut short is still found by the
    // HTTP layer (an incomplete head or body at EOF).
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    const std::string& ciphers = cfg.ciphers.empty() ? kDefaultTls12Ciphers : cfg.ciphers;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1)
      return makeError("ciphers \"" + ciphers + "\": " + opensslError());
    if (!cfg.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, cfg.ciphersuites.c_str()) != 1)
      return makeError("ciphersuites \"" + cfg.ciphersuites + "\": " + opensslError());
    if (auto ok = useCertificate(ctx, cert.cert, cert.key); !ok) return ok.error();
    static int offer_h2_marker = 1;
    SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, cfg.offer_h2 ? &offer_h2_marker : nullptr);
    // Resumption by session cache and tickets; the id context is required once peers are
    // verified, and is the same for every certificate of the listener.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    static const unsigned char kSessionContext[] = "portico";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
    if (cfg.client_auth) {
      const auto& a = *cfg.client_auth;
      if (SSL_CTX_load_verify_locations(ctx, a.ca.c_str(), nullptr) != 1)
        return makeError("cannot load client CA " + a.ca + ": " + opensslError());
      if (STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(a.ca.c_str()))
        SSL_CTX_set_client_CA_list(ctx, cas);
      if (a.mode == config::ClientAuthConfig::Mode::Required) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, acceptAnyCertificate);
      }
    }
    return ctx;
  }
};

ServerContext::ServerContext() : impl_(std::make_unique<Impl>()) {}
ServerContext::~ServerContext() = default;

Result<std::shared_ptr<const ServerContext>> ServerContext::build(const config::TlsConfig& cfg,
                                                                  TicketKeys* tickets) {
  std::shared_ptr<ServerContext> sc(new ServerContext());
  Impl& impl = *sc->impl_;
  impl.cfg = cfg;
  ERR_clear_error();
  for (const auto& cert : cfg.certificates) {
    auto ctx = impl.makeContext(cert);
    if (!ctx) return ctx.error();
    if (tickets) tickets->attach(*ctx);
    impl.files.push_back(cert.cert);
    impl.files.push_back(cert.key);
    auto names = dnsNames(SSL_CTX_get0_certificate(*ctx));
    for (const auto& name : names) {
      if (name.rfind("*.", 0) == 0) {
        impl.wildcard.emplace(name.substr(1), *ctx);  // the first certificate for a name wins
      } else {
        impl.exact.emplace(name, *ctx);
      }
    }
  }
  if (cfg.client_auth) impl.files.push_back(cfg.client_auth->ca);
  if (impl.contexts.empty()) return makeError("no certificate");
  SSL_CTX* main = impl.contexts.front()->native_handle();
  SSL_CTX_set_tlsext_servername_callback(main, &Impl::onServerName);
  SSL_CTX_set_tlsext_servername_arg(main, &impl);
  return std::shared_ptr<const ServerContext>(std::move(sc));
}

boost::asio::ssl::context& ServerContext::context() const {
  return *impl_->contexts.front();
}
const std::vector<std::string>& ServerContext::files() const {
  return impl_->files;
}
const config::TlsConfig& ServerContext::config() const {
  return impl_->cfg;
}

PeerIdentity peerIdentity(SSL* ssl) {
  PeerIdentity id;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn) id.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return id;
  id.presented = true;
  id.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0) id.subject.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      const ASN1_STRING* s = nullptr;
      if (n->type == GEN_DNS) s = n->d.dNSName;
      if (n->type == GEN_EMAIL) s = n->d.rfc822Name;
      if (n->type == GEN_URI) s = n->d.uniformResourceIdentifier;
      if (!s) continue;
      if (!id.sans.empty()) id.sans += ",";
      id.sans.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(sans);
  }
  X509_free(cert);
  return id;
}

}  // namespace portico::tls
