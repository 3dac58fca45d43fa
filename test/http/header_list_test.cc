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
