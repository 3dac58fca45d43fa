#pragma once
// SHA-256, raw or as lower-case hex: config hashes, admin token digests, PKCE challenges.
#include <string>
#include <string_view>

namespace portico {

std::string sha256(std::string_view data);  // the 32 bytes
std::string sha256Hex(std::string_view data);

}  // namespace portico
