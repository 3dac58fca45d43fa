#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace portico {
namespace {

TEST(Utf8, AcceptsEveryScalarValueEncodedByTheRfc) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("plain ASCII, long enough for the eight-byte path"));
  EXPECT_TRUE(isValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_TRUE(
      isValidUtf8("\xEF\xBB\xBF"
                  "bom first"));
  EXPECT_TRUE(isValidUtf8("\xC2\x80"));          // U+0080
  EXPECT_TRUE(isValidUtf8("\xE0\xA0\x80"));      // U+0800
  EXPECT_TRUE(isValidUtf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(isValidUtf8("\xEE\x80\x80"));      // U+E000
  EXPECT_TRUE(isValidUtf8("\xF0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(isValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST(Utf8, FindsTheFirstByteThatBeginsNoValidSequence) {
  EXPECT_EQ(firstInvalidUtf8("abc\xFF"), 3u);
  EXPECT_EQ(firstInvalidUtf8("0123456789\x80tail"), 10u);  // lone continuation
  EXPECT_EQ(firstInvalidUtf8("\xC0\xAF"), 0u);             // overlong '/'
  EXPECT_EQ(firstInvalidUtf8("\xC1\xBF"), 0u);             // overlong
  EXPECT_EQ(firstInvalidUtf8("\xE0\x9F\xBF"), 0u);         // overlong U+07FF
  EXPECT_EQ(firstInvalidUtf8("\xF0\x8F\xBF\xBF"), 0u);     // overlong U+FFFF
  EXPECT_EQ(firstInvalidUtf8("ok \xED\xA0\x80"), 3u);      // surrogate U+D800
  EXPECT_EQ(firstInvalidUtf8("\xED\xBF\xBF"), 0u);         // surrogate U+DFFF
  EXPECT_EQ(firstInvalidUtf8("\xF4\x90\x80\x80"), 0u);     // U+110000
  EXPECT_EQ(firstInvalidUtf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(firstInvalidUtf8("x\xE2\x82"), 1u);  // cut short
  EXPECT_EQ(firstInvalidUtf8("\xE2(\xAC"), 0u);  // not a continuation
  EXPECT_EQ(firstInvalidUtf8(std::string("nul \0 is fine\xFE", 14)), 13u);
}

TEST(Utf8, AgreesWithADecoderOverEveryTwoByteInput) {
  // Every pair of bytes: valid exactly when it is two ASCII bytes or one valid 2-byte form.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const char s[2] = {static_cast<char>(a), static_cast<char>(b)};
      const bool expected =
          (a < 0x80 && b < 0x80) || (a >= 0xC2 && a <= 0xDF && (b & 0xC0) == 0x80);
      EXPECT_EQ(isValidUtf8(std::string_view(s, 2)), expected) << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace portico
