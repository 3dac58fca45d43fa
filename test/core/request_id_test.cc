#include "core/request_id.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>

namespace portico {
namespace {

TEST(RequestId, ThirtyTwoLowerCaseHexDigitsEveryDigitUsed) {
  std::array<int, 16> seen{};
  std::set<std::string> ids;
  std::string id = "a previous, longer value of the reused string, longer than 32";
  for (int i = 0; i < 2000; ++i) {
    generateRequestId(id);
    ASSERT_EQ(id.size(), 32u);
    for (char c : id) {
      const bool digit = c >= '0' && c <= '9';
      const bool letter = c >= 'a' && c <= 'f';
      ASSERT_TRUE(digit || letter) << id;
      ++seen[digit ? c - '0' : c - 'a' + 10];
    }
    ASSERT_TRUE(isAcceptableRequestId(id));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 2000u);  // 128 random bits each
  // 64,000 digits, 4,000 expected per value: each far from 0 and from all of them.
  for (int n : seen) {
    EXPECT_GT(n, 3000);
    EXPECT_LT(n, 5000);
  }
}

TEST(RequestId, AcceptsWhatClientsSendWithinLimits) {
  EXPECT_TRUE(isAcceptableRequestId("abc-DEF_1.2:3"));
  EXPECT_FALSE(isAcceptableRequestId(""));
  EXPECT_FALSE(isAcceptableRequestId(std::string(129, 'a')));
  EXPECT_FALSE(isAcceptableRequestId("a b"));
  EXPECT_FALSE(isAcceptableRequestId("a\r\nX-Evil: 1"));
}

}  // namespace
}  // namespace portico
