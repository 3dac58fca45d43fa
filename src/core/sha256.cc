#include "core/sha256.h"

// OpenSSL's low-level SHA-256 (deprecated since 3.0, still part of its API) on purpose: the
// EVP interface initialises OpenSSL on its first call — reads openssl.cnf, loads the default
// provider, builds its algorithm tables — which costs a process 2 MiB of resident memory. This
// digest runs on every config load (the snapshot's hash), so a config without TLS or Redis
// would pay that for one hash (docs/performance.md, idle RSS). Same digest, same assembly, and
// no provider dispatch or context allocation per call (key-auth hashes every request's key).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace portico {

static_assert(SHA256_DIGEST_LENGTH == std::tuple_size_v<Sha256Digest>);

void sha256Into(std::string_view data, Sha256Digest& out) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(out.data(), &ctx);
}

std::string sha256(std::string_view data) {
  Sha256Digest digest;
  sha256Into(data, digest);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

std::string sha256Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (const unsigned char c : sha256(data)) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

}  // namespace portico
