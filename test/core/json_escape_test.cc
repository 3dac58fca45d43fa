#include "core/json_escape.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace portico {
namespace {

std::string escapedJson(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

TEST(JsonEscapeTest, PlainRunsAndEveryEscape) {
  EXPECT_EQ(escapedJson(""), R"("")");
  EXPECT_EQ(escapedJson("/orders/7?x=1"), R"("/orders/7?x=1")");
  EXPECT_EQ(escapedJson("a\"b\\c\nd\re\tf"), R"("a\"b\\c\nd\re\tf")");
  EXPECT_EQ(escapedJson(std::string("\x01z\x7f", 3)), R"("\u0001z\u007f")");
  EXPECT_EQ(escapedJson("\xc3\xa9"), R"("\u00c3\u00a9")");  // bytes, not code points
  // Whatever the input, the output is one valid JSON string.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  const auto parsed = nlohmann::json::parse(escapedJson(all));
  ASSERT_TRUE(parsed.is_string());
  EXPECT_EQ(parsed.get<std::string>().substr(32, 95), all.substr(32, 95));
}

TEST(JsonEscapeTest, Utf8TextKeepsItsCharacters) {
  auto utf8 = [](std::string_view s) {
    std::string out;
    appendJsonUtf8String(out, s);
    return out;
  };
  EXPECT_EQ(utf8("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");
  EXPECT_EQ(utf8(std::string("\x01\"\\\x7f", 4)), "\"\\u0001\\\"\\\\\x7f\"");
  // Long enough for the 16-byte blocks, with an escape in the second block.
  const std::string text =
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\nend";
  EXPECT_EQ(nlohmann::json::parse(utf8(text)).get<std::string>(), text);
}

}  // namespace
}  // namespace portico
