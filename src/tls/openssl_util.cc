#include "tls/openssl_util.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace portico::tls {

std::string opensslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Result<bool> useCertificate(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    return makeError("cannot load certificate " + cert + ": " + opensslError());
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    return makeError("cannot load key " + key + ": " + opensslError());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return makeError("key " + key + " does not match certificate " + cert);
  return true;
}

}  // namespace portico::tls
