#pragma once
// Base64 (RFC 4648, standard alphabet, padded).
#include <string>
#include <string_view>

namespace portico {

std::string base64Encode(std::string_view data);

}  // namespace portico
