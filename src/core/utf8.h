#pragma once
// UTF-8 as RFC 3629 has it: no overlong forms, no surrogates, nothing above U+10FFFF. What a
// JSON parser accepts; the YAML reader takes any bytes, so config text is checked with this.
#include <cstddef>
#include <string_view>

namespace portico {

// The index of the first byte of `s` that does not begin a valid sequence (s.size() when the
// whole of `s` is valid).
std::size_t firstInvalidUtf8(std::string_view s);

inline bool isValidUtf8(std::string_view s) {
  return firstInvalidUtf8(s) == s.size();
}

}  // namespace portico
