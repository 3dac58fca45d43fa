#pragma once
// JSON string literals (with quotes) for arbitrary bytes. Bytes outside printable ASCII are
// escaped as \u00XX, so a log line is always valid JSON whatever the client sent.
#include <cstddef>
#include <string>
#include <string_view>

namespace portico {

void appendJsonString(std::string& out, std::string_view s);

// For text known to be valid UTF-8 (the strings of a parsed JSON document): only what JSON
// requires is escaped (control characters, quote, backslash); other bytes are kept as they are.
void appendJsonUtf8String(std::string& out, std::string_view s);

// Writes the literal at `out`, which must have room for jsonStringBound(s.size()) bytes (it
// stores whole 16-byte blocks, so it may write past the end of the literal inside that room);
// returns the end of the literal. For writers that size their buffer once.
char* writeJsonString(char* out, std::string_view s);
// The same for valid UTF-8 text, as appendJsonUtf8String.
char* writeJsonUtf8String(char* out, std::string_view s);
constexpr std::size_t jsonStringBound(std::size_t n) {
  return 6 * n + 2 + 16;
}

// The index of the first byte of `s` that a JSON string must escape (s.size() when none).
// Scans 16 bytes at a time.
std::size_t findJsonEscape(std::string_view s);

}  // namespace portico
