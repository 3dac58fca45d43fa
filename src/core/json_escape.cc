#include "core/json_escape.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/sanitizers.h"

namespace portico {

namespace {

// Bytes that need no escaping: printable ASCII but the quote and the backslash.
[[maybe_unused]] constexpr bool plain(unsigned char c) {
  return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

constexpr char kHex[] = "0123456789abcdef";

// Whether 16 bytes from `p` lie in one 4 KiB page. Not under AddressSanitizer, which (rightly)
// reports reads past an object's end even when they cannot fault.
bool withinOnePage([[maybe_unused]] const char* p) {
#if defined(PORTICO_ASAN)
  return false;
#else
  return (reinterpret_cast<std::uintptr_t>(p) & 4095) <= 4096 - 16;
#endif
}

// The escape of one byte that is not plain; returns its length.
std::size_t escape(unsigned char c, char* out) {
  switch (c) {
    case '"':
      std::memcpy(out, "\\\"", 2);
      return 2;
    case '\\':
      std::memcpy(out, "\\\\", 2);
      return 2;
    case '\n':
      std::memcpy(out, "\\n", 2);
      return 2;
    case '\r':
      std::memcpy(out, "\\r", 2);
      return 2;
    case '\t':
      std::memcpy(out, "\\t", 2);
      return 2;
    default: {
      const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      std::memcpy(out, escaped, 6);
      return 6;
    }
  }
}

#if defined(__SSE2__)
// One bit per byte of `v` to escape. kUtf8: for valid UTF-8 text, where only what JSON requires
// is escaped (controls, quote, backslash); else also DEL and every byte from 0x80.
template <bool kUtf8>
unsigned escapeMask(__m128i v) {
  // Signed bytes: "less than 0x20" also catches 0x80..0xff (negative); "no bit of 0xe0" catches
  // only 0x00..0x1f.
  const __m128i controls =
      kUtf8 ? _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(static_cast<char>(0xe0))),
                             _mm_setzero_si128())
            : _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                           _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
  const __m128i bad = _mm_or_si128(controls, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                          _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
  return static_cast<unsigned>(_mm_movemask_epi8(bad));
}
#endif

// The first byte of `s` to escape (see escapeMask for kUtf8). kUtf8: for valid UTF-8 text, where
// only what JSON requires is escaped (controls, quote, backslash); else also DEL and every byte
// from 0x80.
template <bool kUtf8>
std::size_t findEscape(std::string_view s) {
#if defined(__SSE2__)
  const auto escapes = escapeMask<kUtf8>;
  std::size_t i = 0;
  for (; i + 16 <= s.size(); i += 16) {
    const unsigned mask = escapes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i)));
    if (mask) return i + static_cast<std::size_t>(__builtin_ctz(mask));
  }
  const std::size_t rest = s.size() - i;
  if (rest == 0) return i;
  // The last bytes (most values are shorter than 16): copied out, so nothing past the end is read.
  alignas(16) char tail[16] = {};
  std::memcpy(tail, s.data() + i, rest);
  const unsigned mask =
      escapes(_mm_load_si128(reinterpret_cast<const __m128i*>(tail))) & ((1u << rest) - 1);
  return mask ? i + static_cast<std::size_t>(__builtin_ctz(mask)) : s.size();
#else
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kUtf8 ? (c < 0x20 || c == '"' || c == '\\') : !plain(c)) break;
    ++i;
  }
  return i;
#endif
}

template <bool kUtf8>
void appendEscaped(std::string& out, std::string_view s) {
  out += '"';
  // Runs of plain bytes are appended at once: most values (paths, ids, names) are one run.
  while (!s.empty()) {
    const std::size_t run = findEscape<kUtf8>(s);
    out.append(s.data(), run);
    if (run == s.size()) break;
    char escaped[6];
    out.append(escaped, escape(static_cast<unsigned char>(s[run]), escaped));
    s.remove_prefix(run + 1);
  }
  out += '"';
}

template <bool kUtf8>
char* writeEscaped(char* out, std::string_view s) {
  *out++ = '"';
#if defined(__SSE2__)
  // Each block of 16 source bytes is checked and stored whole; the output then advances only
  // past the plain bytes before the first escape. The last, partial block is copied out of
  // the source first, so nothing past its end is read.
  while (!s.empty()) {
    __m128i v;
    std::size_t n = 16;
    if (s.size() >= 16 || withinOnePage(s.data())) {
      // A short value's 16-byte load stays inside its page, so it cannot fault; the bytes past
      // the end are masked out below.
      v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data()));
      n = std::min<std::size_t>(16, s.size());
    } else {
      alignas(16) char tail[16] = {};
      std::memcpy(tail, s.data(), s.size());
      v = _mm_load_si128(reinterpret_cast<const __m128i*>(tail));
      n = s.size();
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
    const unsigned mask = escapeMask<kUtf8>(v) & ((1u << n) - 1);
    if (!mask) {
      out += n;
      s.remove_prefix(n);
      continue;
    }
    const auto run = static_cast<std::size_t>(__builtin_ctz(mask));
    out += run;
    out += escape(static_cast<unsigned char>(s[run]), out);
    s.remove_prefix(run + 1);
  }
#else
  while (!s.empty()) {
    const std::size_t run = findEscape<kUtf8>(s);
    std::memcpy(out, s.data(), run);
    out += run;
    if (run == s.size()) break;
    out += escape(static_cast<unsigned char>(s[run]), out);
    s.remove_prefix(run + 1);
  }
#endif
  *out++ = '"';
  return out;
}

}  // namespace

std::size_t findJsonEscape(std::string_view s) {
  return findEscape<false>(s);
}

char* writeJsonString(char* out, std::string_view s) {
  return writeEscaped<false>(out, s);
}

char* writeJsonUtf8String(char* out, std::string_view s) {
  return writeEscaped<true>(out, s);
}

void appendJsonString(std::string& out, std::string_view s) {
  appendEscaped<false>(out, s);
}

void appendJsonUtf8String(std::string& out, std::string_view s) {
  appendEscaped<true>(out, s);
}

}  // namespace portico
