#include "config/units.h"

#include <gtest/gtest.h>

namespace portico::config {
namespace {

TEST(Units, Durations) {
  EXPECT_EQ(parseDuration("250ms")->count(), 250);
  EXPECT_EQ(parseDuration("10s")->count(), 10000);
  EXPECT_EQ(parseDuration("5m")->count(), 300000);
  EXPECT_EQ(parseDuration("1h")->count(), 3600000);
  EXPECT_EQ(parseDuration("1.5s")->count(), 1500);
  EXPECT_EQ(parseDuration("0")->count(), 0);
  EXPECT_FALSE(parseDuration("10"));
  EXPECT_FALSE(parseDuration("ten seconds"));
  EXPECT_FALSE(parseDuration("10 parsecs"));
}

TEST(Units, Sizes) {
  EXPECT_EQ(*parseSize("512"), 512u);
  EXPECT_EQ(*parseSize("64KiB"), 65536u);
  EXPECT_EQ(*parseSize("10MiB"), 10u * 1024 * 1024);
  EXPECT_EQ(*parseSize("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(*parseSize("2KB"), 2000u);
  EXPECT_FALSE(parseSize("12 bananas"));
  EXPECT_FALSE(parseSize("KiB"));
  EXPECT_FALSE(parseSize("1.5B"));
}

}  // namespace
}  // namespace portico::config
