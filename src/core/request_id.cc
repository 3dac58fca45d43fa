#include "core/request_id.h"

#include "core/rng.h"

#include <cstdint>
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

void generateRequestId(std::string& id) {
  Rng& rng = threadRng();
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
