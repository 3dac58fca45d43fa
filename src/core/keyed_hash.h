#pragma once
// A hash keyed with a secret of this process, for tables whose keys a client chooses: a
// rate-limit key from a header, a token, a cache key from the URL. With libstdc++'s
// std::hash (MurmurHash2, a fixed seed) anyone can compute keys that all land in one bucket
// offline and make every lookup walk them. SipHash-1-3 under a random 128-bit key (as Rust's
// and Python's default hashers do) leaves no such keys to compute. It costs ~5.5 ns more than
// std::hash on a 17-byte key (9.6 against 4.1 ns).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace portico {

struct SipKey {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

// SipHash-c-d of `data` under `key` (the reference's byte order: little-endian words).
template <int C, int D>
std::uint64_t sipHash(const SipKey& key, std::string_view data);

// This process's key: random (getrandom), drawn once, never changed.
const SipKey& processSipKey();

// SipHash-1-3 under processSipKey(); transparent, so tables of std::string take string_views.
struct KeyedHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return sipHash<1, 3>(processSipKey(), s); }
};

}  // namespace portico
