#include "config/units.h"

#include <charconv>
#include <cmath>
#include <string>

namespace portico::config {
namespace {

struct Number {
  double value;
  std::string_view unit;
};

Result<Number> splitNumber(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t i = 0;
  bool seen_digit = false, seen_dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      seen_digit = true;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
  }
  if (!seen_digit) return makeError("expected a number, got \"" + std::string(text) + "\"");
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc() || ptr != text.data() + i)
    return makeError("invalid number \"" + std::string(text) + "\"");
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return Number{value, unit};
}

}  // namespace

Result<Duration> parseDuration(std::string_view text) {
  auto n = splitNumber(text);
  if (!n)
    return makeError("invalid duration \"" + std::string(text) +
                     "\" (use a number with ms, s, m or h, e.g. 250ms or 10s)");
  double factor;
  if (n->unit == "ms") {
    factor = 1;
  } else if (n->unit == "s") {
    factor = 1000;
  } else if (n->unit == "m") {
    factor = 60'000;
  } else if (n->unit == "h") {
    factor = 3'600'000;
  } else if (n->unit.empty() && n->value == 0) {
    factor = 0;
  } else {
    return makeError("invalid duration \"" + std::string(text) +
                     "\" (use a number with ms, s, m or h, e.g. 250ms or 10s)");
  }
  double ms = n->value * factor;
  if (ms > 1e12) return makeError("duration \"" + std::string(text) + "\" is too large");
  return Duration(static_cast<std::int64_t>(std::llround(ms)));
}

Result<std::uint64_t> parseSize(std::string_view text) {
  auto n = splitNumber(text);
  if (!n)
    return makeError("invalid size \"" + std::string(text) +
                     "\" (use a number with B, KiB, MiB, GiB, KB, MB or GB, e.g. 64KiB)");
  double factor;
  const std::string_view u = n->unit;
  if (u.empty() || u == "B") {
    factor = 1;
  } else if (u == "KiB") {
    factor = 1024.0;
  } else if (u == "MiB") {
    factor = 1024.0 * 1024;
  } else if (u == "GiB") {
    factor = 1024.0 * 1024 * 1024;
  } else if (u == "KB") {
    factor = 1e3;
  } else if (u == "MB") {
    factor = 1e6;
  } else if (u == "GB") {
    factor = 1e9;
  } else {
    return makeError("invalid size \"" + std::string(text) +
                     "\" (use a number with B, KiB, MiB, GiB, KB, MB or GB, e.g. 64KiB)");
  }
  double bytes = n->value * factor;
  if (bytes > 1e18) return makeError("size \"" + std::string(text) + "\" is too large");
  if (bytes != std::floor(bytes))
    return makeError("size \"" + std::string(text) + "\" is not a whole number of bytes");
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace portico::config
