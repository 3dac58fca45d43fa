#include "http/header_list.h"

#include <gtest/gtest.h>

namespace portico::http {
namespace {

TEST(HeaderList, ClassifiesKnownNamesCaseInsensitively) {
  EXPECT_EQ(classifyHeader("Content-Length"), HeaderId::ContentLength);
  EXPECT_EQ(classifyHeader("TRANSFER-ENCODING"), HeaderId::TransferEncoding);
  EXPECT_EQ(classifyHeader("x-forwarded-proto"), HeaderId::XForwardedProto);
  EXPECT_EQ(classifyHeader("X-Forwarded-Host"), HeaderId::XForwardedHost);
  EXPECT_EQ(classifyHeader("te"), HeaderId::TE);
  EXPECT_EQ(classifyHeader("X-Custom"), HeaderId::Other);
  EXPECT_EQ(classifyHeader("Content-Lengths"), HeaderId::Other);
}

// The word-at-a-time compare and lowering against a byte-by-byte reference: every length up
// to 20, each position holding each byte value (letters of both cases, the neighbours of
// 'A'..'Z' and 'a'..'z', obs-text).
TEST(HeaderList, CaseFoldingMatchesTheBytewiseRule) {
  const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; };
  for (std::size_t len = 0; len <= 20; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int v = 0; v < 256; ++v) {
        std::string a(len, 'k');
        a[pos] = static_cast<char>(v);
        std::string expected = a;
        for (auto& c : expected) c = lower(c);
        std::string lowered = a;
        toLower(lowered);
        ASSERT_EQ(lowered, expected) << len << " " << pos << " " << v;
        std::string b = expected;  // equal ignoring case
        ASSERT_TRUE(equalsIgnoreCase(a, b)) << len << " " << pos << " " << v;
        b[pos] = static_cast<char>(lower(char(v)) ^ 0x20);  // the other case, or another byte
        const bool same = lower(b[pos]) == lower(char(v));
        ASSERT_EQ(equalsIgnoreCase(a, b), same) << len << " " << pos << " " << v;
      }
    }
  }
  EXPECT_FALSE(equalsIgnoreCase("content-length", "content-lengtH "));
  EXPECT_TRUE(equalsIgnoreCase("X-Forwarded-Proto", "x-forwarded-PROTO"));
}

TEST(HeaderList, AddLowerCaseKeepsTheClass) {
  HeaderList h;
  h.add("Host", "old");
  h.clear();  // the slot's strings are reused
  h.addLowerCase("X-Request-ID", "r1", HeaderId::XRequestId);
  h.addLowerCase("X-Custom-Name", "v", HeaderId::Other);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.begin()->name, "x-request-id");
  EXPECT_EQ(h.begin()->value, "r1");
  EXPECT_EQ(*h.find(HeaderId::XRequestId), "r1");
  EXPECT_EQ((h.begin() + 1)->name, "x-custom-name");
  EXPECT_EQ((h.begin() + 1)->id, HeaderId::Other);
}

TEST(HeaderList, AddOrJoinJoinsIntoTheFirstFieldOfThatClass) {
  HeaderList h;
  h.addOrJoin("cookie", "a=1", HeaderId::Cookie, "; ");
  h.add("accept", "*/*");
  h.addOrJoin("cookie", "b=2", HeaderId::Cookie, "; ");
  h.addOrJoin("cookie", "c=3", HeaderId::Cookie, "; ");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.count(HeaderId::Cookie), 1u);
  EXPECT_EQ(*h.find(HeaderId::Cookie), "a=1; b=2; c=3");
  EXPECT_EQ((h.begin() + 1)->name, "accept");
}

TEST(HeaderList, ClearKeepsObjectsAndRemoveKeepsOrder) {
  HeaderList h;
  h.add("A", "1");
  h.add("Host", "x");
  h.add("B", "2");
  h.add("host", "y");
  EXPECT_EQ(h.count(HeaderId::Host), 2u);
  EXPECT_EQ(h.remove("HOST"), 2u);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.begin()->name, "A");
  EXPECT_EQ((h.begin() + 1)->name, "B");
  h.clear();
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.find("a"), nullptr);
  h.add("Via", "1.1 x");
  EXPECT_EQ(*h.find("via"), "1.1 x");
  EXPECT_EQ(h.begin()->id, HeaderId::Via);
  HeaderList copy = h;
  HeaderList moved = std::move(h);
  EXPECT_EQ(copy.size(), 1u);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_EQ(h.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
}

}  // namespace
}  // namespace portico::http
