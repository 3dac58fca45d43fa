#pragma once
// SHA-256 as lower-case hex: config hashes, admin token digests.
#include <string>
#include <string_view>

namespace portico {

std::string sha256Hex(std::string_view data);

}  // namespace portico
