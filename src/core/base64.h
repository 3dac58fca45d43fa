#pragma once
// Base64 (RFC 4648, standard alphabet, padded).
#include <string>
#include <string_view>

namespace portico {

std::string base64Encode(std::string_view data);
// The URL-safe alphabet without padding (RFC 4648 §5), as JWTs and PKCE use it.
std::string base64UrlEncode(std::string_view data);
// Strict: padded, standard alphabet, no whitespace. False on anything else.
bool base64Decode(std::string_view text, std::string& out);

}  // namespace portico
