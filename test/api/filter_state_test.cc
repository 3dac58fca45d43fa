#include "api/filter_state.h"

#include <gtest/gtest.h>

#include <string>

namespace portico::api {
namespace {

struct Counter {
  int n = 0;
};
struct Note {
  std::string text;
};

TEST(FilterState, OneSlotPerTypeMadeOnFirstUse) {
  FilterState state;
  EXPECT_EQ(state.find<Counter>(), nullptr);
  state.get<Counter>().n += 2;
  state.get<Counter>().n += 3;
  state.get<Note>().text = "x";
  ASSERT_NE(state.find<Counter>(), nullptr);
  EXPECT_EQ(state.find<Counter>()->n, 5);
  EXPECT_EQ(state.get<Note>().text, "x");
  state.clear();
  EXPECT_TRUE(state.empty());
  EXPECT_EQ(state.get<Counter>().n, 0);
}

}  // namespace
}  // namespace portico::api
