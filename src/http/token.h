#pragma once
// Tokens (RFC 9110 §5.6.2): field names, methods, transfer codings.
#include <array>
#include <string_view>

namespace portico::http {

namespace detail {
constexpr std::array<bool, 256> makeTokenTable(bool lower_case_letters) {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = lower_case_letters;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr auto kTokenChar = makeTokenTable(true);
inline constexpr auto kMethodChar = makeTokenTable(false);
inline bool allIn(std::string_view s, const std::array<bool, 256>& table) {
  if (s.empty()) return false;
  for (const char c : s)
    if (!table[static_cast<unsigned char>(c)]) return false;
  return true;
}
}  // namespace detail

inline bool isTokenChar(char c) {
  return detail::kTokenChar[static_cast<unsigned char>(c)];
}
inline bool isToken(std::string_view s) {
  return detail::allIn(s, detail::kTokenChar);
}

// A token character other than a lower-case letter. Methods are case-sensitive and every
// registered one is upper-case, but frameworks such as Django and Werkzeug upper-case the
// method they get: `delete` would miss a route that lists DELETE (route methods are
// upper-cased at load) and run as DELETE behind another route. nginx, and so Kong, refuses
// such a method with 400 as well.
inline bool isMethodChar(char c) {
  return detail::kMethodChar[static_cast<unsigned char>(c)];
}
inline bool isMethod(std::string_view s) {
  return detail::allIn(s, detail::kMethodChar);
}

}  // namespace portico::http
