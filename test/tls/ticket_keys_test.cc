#include "tls/ticket_keys.h"

#include <gtest/gtest.h>

#include <thread>

namespace portico::tls {
namespace {

TEST(TicketKeys, RotatesAndAcceptsThePreviousKeyOnly) {
  TicketKeys keys(std::chrono::seconds(0));  // every use is due: rotate each time
  auto first = keys.current();
  auto second = keys.current();
  EXPECT_NE(first.name, second.name);
  TicketKeys::Key found;
  bool is_current = true;
  // find() rotates too, so "second" is now the previous key: accepted, to be renewed.
  EXPECT_TRUE(keys.find(second.name.data(), found, is_current));
  EXPECT_FALSE(is_current);
  EXPECT_EQ(found.aes, second.aes);
  EXPECT_FALSE(keys.find(first.name.data(), found, is_current));  // two rotations ago
  EXPECT_EQ(keys.size(), 2u);
}

TEST(TicketKeys, StableWithinTheInterval) {
  TicketKeys keys(std::chrono::hours(1));
  auto a = keys.current();
  auto b = keys.current();
  EXPECT_EQ(a.name, b.name);
  TicketKeys::Key found;
  bool is_current = false;
  EXPECT_TRUE(keys.find(a.name.data(), found, is_current));
  EXPECT_TRUE(is_current);
}

}  // namespace
}  // namespace portico::tls
