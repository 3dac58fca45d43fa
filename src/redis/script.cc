#include <openssl/sha.h>

#include "redis/client.h"

namespace portico::redis {

Script::Script(std::string source) : text(std::move(source)) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : md) {
    sha1 += kHex[c >> 4];
    sha1 += kHex[c & 15];
  }
}

}  // namespace portico::redis
