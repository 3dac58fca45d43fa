#include "core/keyed_hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace portico {
namespace {

SipKey referenceKey() {  // bytes 00..0f, as in the SipHash paper
  return {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
}

// Wrappers: a template's comma would split a gtest macro's arguments.
std::uint64_t sip24(const SipKey& k, std::string_view s) {
  return sipHash<2, 4>(k, s);
}
std::uint64_t sip13(const SipKey& k, std::string_view s) {
  return sipHash<1, 3>(k, s);
}

std::string bytesUpTo(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(KeyedHash, SipHash24GivesThePapersFigures) {
  // The paper's worked example (15 bytes 00..0e) and the first of the reference vectors
  // (the empty message): a wrong word order, length byte or round would change both.
  EXPECT_EQ(sip24(referenceKey(), bytesUpTo(15)), 0xa129ca6149be45e5ULL);
  EXPECT_EQ(sip24(referenceKey(), ""), 0x726fdb47dd0e0e31ULL);
}

TEST(KeyedHash, EveryByteAndTheLengthCount) {
  const SipKey key = referenceKey();
  std::set<std::uint64_t> seen;
  std::string s;
  for (int len = 0; len < 64; ++len) {  // lengths across whole and partial words
    EXPECT_TRUE(seen.insert(sip13(key, s)).second) << len;
    s.push_back('\0');  // only the length differs: trailing zero bytes must still count
  }
  const std::string base = bytesUpTo(23);
  for (std::size_t i = 0; i < base.size(); ++i) {
    std::string flipped = base;
    flipped[i] ^= 1;
    EXPECT_NE(sip13(key, flipped), sip13(key, base)) << i;
  }
}

TEST(KeyedHash, TheProcessKeyIsRandomAndStable) {
  const SipKey& key = processSipKey();
  EXPECT_EQ(&key, &processSipKey());
  EXPECT_FALSE(key.k0 == 0 && key.k1 == 0);
  const std::string k = "consumer-1234";
  EXPECT_EQ(KeyedHash{}(k), sip13(key, k));
  // Another key gives other figures: the hash depends on the secret, not only the input.
  EXPECT_NE(sip13(referenceKey(), k), sip13(key, k));
}

}  // namespace
}  // namespace portico
