#include "core/request_id.h"

#include "core/rng.h"

#include <cstdint>
#include <cstring>
#include <random>

namespace portico {
namespace {

// Seeded once per thread from the system: ids need uniqueness, not secrecy.
Rng& threadRng() {
  thread_local Rng rng([] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }());
  return rng;
}

}  // namespace

std::string generateRequestId() {
  std::string id;
  generateRequestId(id);
  return id;
}

namespace {

// The eight nibbles of `x` as eight lower-case hex digits, all at once (a random id needs
// the digits, not a particular order of them).
std::uint64_t hexDigits(std::uint32_t x) {
  std::uint64_t v = x;
  v = (v | (v << 16)) & 0x0000ffff0000ffffull;
  v = (v | (v << 8)) & 0x00ff00ff00ff00ffull;
  v = (v | (v << 4)) & 0x0f0f0f0f0f0f0f0full;  // one nibble per byte
  const std::uint64_t letters = ((v + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
  return v + 0x3030303030303030ull + letters * ('a' - '0' - 10);
}

}  // namespace

void generateRequestId(std::string& id) {
  Rng& rng = threadRng();
  id.resize(32);
  const std::uint64_t a = rng.next(), b = rng.next();
  const std::uint64_t digits[4] = {
      hexDigits(static_cast<std::uint32_t>(a)), hexDigits(static_cast<std::uint32_t>(a >> 32)),
      hexDigits(static_cast<std::uint32_t>(b)), hexDigits(static_cast<std::uint32_t>(b >> 32))};
  std::memcpy(id.data(), digits, sizeof digits);
}

bool isAcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace portico
