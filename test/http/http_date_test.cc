#include "http/http_date.h"

#include <gtest/gtest.h>

namespace portico::http {
namespace {

TEST(HttpDate, ReadsTheThreeFormsOfOneInstant) {
  const auto fixdate = parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT");
  ASSERT_TRUE(fixdate);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*fixdate), 784111777);
  EXPECT_EQ(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), fixdate);
  EXPECT_EQ(parseHttpDate("Sun Nov  6 08:49:37 1994"), fixdate);
}

TEST(HttpDate, WritesImfFixdate) {
  EXPECT_EQ(formatHttpDate(std::chrono::system_clock::from_time_t(784111777)),
            "Sun, 06 Nov 1994 08:49:37 GMT");
  const auto t = std::chrono::system_clock::from_time_t(1796400000);
  EXPECT_EQ(parseHttpDate(formatHttpDate(t)), t);
}

TEST(HttpDate, RefusesWhatIsNotADate) {
  for (const char* bad : {"", "0", "yesterday", "Sun, 06 Nov 1994 08:49:37", "Sun, 6 Nov 1994",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMTX",
                          "Sun, 06 Nov 0997 08:49:37 GMT", "Sun, 06 Nov 2400 08:49:37 GMT"})
    EXPECT_FALSE(parseHttpDate(bad)) << bad;
}

}  // namespace
}  // namespace portico::http
