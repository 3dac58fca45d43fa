#include "filters/body_rewrite/replacer.h"

#include <gtest/gtest.h>

namespace portico::filters {
namespace {

std::string feedSplit(const Replacements& rules, std::string_view body, std::size_t split) {
  Replacer r(rules);
  std::string out;
  r.feed(body.substr(0, split), false, out);
  r.feed(body.substr(split), true, out);
  return out;
}

TEST(Replacer, FindsMatchesAcrossEverySplitPoint) {
  const Replacements rules{{"internal", "public"}, {"a", "b"}};
  const std::string body = "http://internal/x internal-a";
  for (std::size_t split = 0; split <= body.size(); ++split)
    EXPECT_EQ(feedSplit(rules, body, split), "http://public/x public-b") << split;
}

TEST(Replacer, LongestRuleWinsAtOnePlaceAndOutputIsNotRescanned) {
  const Replacements rules{{"ab", "1"}, {"abc", "2"}, {"x", "xx"}};
  Replacer r(rules);
  std::string out;
  r.feed("abcabx", true, out);
  EXPECT_EQ(out, "21xx");
}

TEST(Replacer, NoRulesPassThroughAndPiecesByteByByte) {
  const Replacements none;
  Replacer pass(none);
  std::string out;
  pass.feed("abc", false, out);
  EXPECT_EQ(out, "abc");
  const Replacements rules{{"xx", "y"}};
  Replacer r(rules);
  std::string got;
  for (char c : std::string(7, 'x')) r.feed(std::string_view(&c, 1), false, got);
  r.feed({}, true, got);
  EXPECT_EQ(got, "yyyx");
}

}  // namespace
}  // namespace portico::filters
