#pragma once
// Parsing of human-friendly durations ("250ms", "10s", "5m") and sizes ("512", "64KiB").
#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/result.h"

namespace portico::config {

using Duration = std::chrono::milliseconds;

// Accepts an integer followed by ms, s, m, h (or a bare 0). Fractions like "1.5s" are accepted.
Result<Duration> parseDuration(std::string_view text);
// Accepts an integer with an optional unit: B, KiB, MiB, GiB (binary) or KB, MB, GB (decimal).
Result<std::uint64_t> parseSize(std::string_view text);

}  // namespace portico::config
