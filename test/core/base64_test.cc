#include "core/base64.h"

#include <gtest/gtest.h>

namespace portico {
namespace {

TEST(Base64, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode(std::string_view("\xff\xfe\x00", 3)), "//4A");
}

}  // namespace
}  // namespace portico

namespace portico {
namespace {

TEST(Base64, DecodesAndRefusesMalformedText) {
  std::string out;
  EXPECT_TRUE(base64Decode("Zm9vYmFy", out));
  EXPECT_EQ(out, "foobar");
  EXPECT_TRUE(base64Decode("Zm9vYg==", out));
  EXPECT_EQ(out, "foob");
  EXPECT_TRUE(base64Decode("YWxpY2U6czNjcjN0", out));
  EXPECT_EQ(out, "alice:s3cr3t");
  EXPECT_FALSE(base64Decode("Zm9", out));        // not a multiple of 4
  EXPECT_FALSE(base64Decode("Zm=v", out));       // data after padding
  EXPECT_FALSE(base64Decode("Zm9v YmFy", out));  // whitespace
  EXPECT_FALSE(base64Decode("Zg==Zg==", out));   // padding in the middle
}

}  // namespace
}  // namespace portico
