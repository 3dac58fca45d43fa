#pragma once
// SHA-256, raw or as lower-case hex: config hashes, admin token digests, API key digests, PKCE
// challenges.
#include <array>
#include <string>
#include <string_view>

namespace portico {

using Sha256Digest = std::array<unsigned char, 32>;

void sha256Into(std::string_view data, Sha256Digest& out);
std::string sha256(std::string_view data);  // the 32 bytes
std::string sha256Hex(std::string_view data);

}  // namespace portico
