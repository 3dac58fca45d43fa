#include "core/request_id.h"

#include <cstdint>
#include <random>

namespace portico {
namespace {

// xoshiro256** seeded once per thread: fast, and ids need uniqueness, not secrecy.
struct Xoshiro {
  std::uint64_t s[4];
  Xoshiro() {
    std::random_device rd;
    for (auto& x : s) x = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

}  // namespace

std::string generateRequestId() {
  std::string id;
  generateRequestId(id);
  return id;
}

void generateRequestId(std::string& id) {
  thread_local Xoshiro rng;
  static constexpr char kHex[] = "0123456789abcdef";
  id.assign(32, '0');
  std::uint64_t a = rng.next(), b = rng.next();
  for (int i = 0; i < 16; ++i) {
    id[i] = kHex[(a >> (i * 4)) & 0xf];
    id[16 + i] = kHex[(b >> (i * 4)) & 0xf];
  }
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
