#pragma once
// Small helpers shared by the TLS contexts.
#include <string>

#include "core/result.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace portico::tls {

// Drains OpenSSL's error queue into one line.
std::string opensslError();

// Loads a PEM certificate chain and its private key into `ctx` and checks that they match.
Result<bool> useCertificate(SSL_CTX* ctx, const std::string& cert, const std::string& key);

}  // namespace portico::tls
