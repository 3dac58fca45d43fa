#include "core/keyed_hash.h"

#include <sys/random.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace portico {
namespace {

std::uint64_t loadLittle(const char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

struct SipState {
  std::uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
  template <int C>
  void absorb(std::uint64_t m) {
    v3 ^= m;
    for (int i = 0; i < C; ++i) round();
    v0 ^= m;
  }
};

}  // namespace

template <int C, int D>
std::uint64_t sipHash(const SipKey& key, std::string_view data) {
  SipState s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
             key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
  const char* p = data.data();
  const std::size_t whole = data.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    std::uint64_t m;
    std::memcpy(&m, p + i, 8);
    if constexpr (std::endian::native == std::endian::big) m = loadLittle(p + i, 8);
    s.absorb<C>(m);
  }
  // The last word: the bytes left over, and the length's low byte on top.
  s.absorb<C>(loadLittle(p + whole, data.size() - whole) | (std::uint64_t{data.size()} << 56));
  s.v2 ^= 0xff;
  for (int i = 0; i < D; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

template std::uint64_t sipHash<1, 3>(const SipKey&, std::string_view);
template std::uint64_t sipHash<2, 4>(const SipKey&, std::string_view);

const SipKey& processSipKey() {
  static const SipKey key = [] {
    SipKey k;
    unsigned char bytes[16];
    std::size_t got = 0;
    while (got < sizeof bytes) {
      const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error("getrandom failed: no key for the keyed hash");
      got += static_cast<std::size_t>(n);
    }
    std::memcpy(&k.k0, bytes, 8);
    std::memcpy(&k.k1, bytes + 8, 8);
    return k;
  }();
  return key;
}

}  // namespace portico
