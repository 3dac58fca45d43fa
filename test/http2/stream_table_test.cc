#include "http2/stream_table.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>

namespace portico::http2 {
namespace {

TEST(StreamTable, FindsWhatWasInsertedAndNothingElse) {
  StreamTable<int> t;
  EXPECT_EQ(t.find(1), nullptr);  // empty, no slots yet
  t.insert(1, 10);
  t.insert(3, 30);
  ASSERT_NE(t.find(1), nullptr);
  EXPECT_EQ(*t.find(1), 10);
  EXPECT_EQ(*t.find(3), 30);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_EQ(t.find(0), nullptr);  // the connection's id is never a stream
  EXPECT_EQ(t.size(), 2u);
}

TEST(StreamTable, InsertingAnIdAgainReplacesItsValue) {
  StreamTable<int> t;
  t.insert(7, 1);
  t.insert(7, 2);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(*t.find(7), 2);
}

TEST(StreamTable, EraseHandsTheValueOverAndForgetsTheId) {
  StreamTable<std::unique_ptr<int>> t;
  t.insert(5, std::make_unique<int>(42));
  std::unique_ptr<int> out;
  EXPECT_TRUE(t.erase(5, &out));
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, 42);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_FALSE(t.erase(5));
  EXPECT_TRUE(t.empty());
}

// Ids 32 apart share a home slot in a 16-slot table (five streams grow it to 16): the run
// they form must stay searchable when members leave from its middle, its start, and across
// the array's end.
TEST(StreamTable, CollidingIdsStayFoundWhenNeighboursLeave) {
  StreamTable<int> t;
  std::set<int> present = {31, 63, 95, 127, 1};  // 31 >> 1 = 15: the last slot, so the run wraps
  for (int id : present) t.insert(id, id * 10);
  for (int gone : {63, 31, 1}) {  // the run's middle, its start, then past the array's end
    EXPECT_TRUE(t.erase(gone));
    present.erase(gone);
    for (int id : {31, 63, 95, 127, 1}) {
      if (present.count(id)) {
        ASSERT_NE(t.find(id), nullptr) << "id " << id << " after erasing " << gone;
        EXPECT_EQ(*t.find(id), id * 10);
      } else {
        EXPECT_EQ(t.find(id), nullptr) << "id " << id << " after erasing " << gone;
      }
    }
  }
  EXPECT_EQ(t.size(), 2u);
}

// Against std::map under the traffic a connection sees: a window of consecutive odd ids,
// opened and closed out of order, with bursts of ids picked to collide.
TEST(StreamTable, AgreesWithAMapUnderRandomOpensAndCloses) {
  StreamTable<int> t;
  std::map<int, int> model;
  std::mt19937 rng(17);
  int next_id = 1;
  for (int step = 0; step < 200000; ++step) {
    unsigned r = rng() % 10;
    if (r < 5 || model.empty()) {
      int id = r == 0 ? next_id + 2 * 64 * static_cast<int>(rng() % 4) : next_id;
      next_id = id + 2;
      t.insert(id, step);
      model[id] = step;
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      int value = -1;
      ASSERT_TRUE(t.erase(it->first, &value));
      EXPECT_EQ(value, it->second);
      model.erase(it);
    }
    if (model.size() > 300) {  // the connection's limit keeps the window small
      t.erase(model.begin()->first);
      model.erase(model.begin());
    }
    ASSERT_EQ(t.size(), model.size());
    if (step % 97 == 0) {
      for (const auto& [id, v] : model) {
        const int* found = t.find(id);
        ASSERT_NE(found, nullptr) << "id " << id << " at step " << step;
        ASSERT_EQ(*found, v);
      }
      std::size_t seen = 0;
      t.forEach([&](std::int32_t id, int& v) {
        ++seen;
        EXPECT_EQ(model.at(id), v);
      });
      EXPECT_EQ(seen, model.size());
    }
  }
}

TEST(StreamTable, ClearEmptiesIt) {
  StreamTable<int> t;
  for (int id = 1; id < 100; id += 2) t.insert(id, id);
  t.clear();
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.find(1), nullptr);
  t.insert(1, 5);
  EXPECT_EQ(*t.find(1), 5);
}

}  // namespace
}  // namespace portico::http2
