#pragma once
// The developer portal's usage kept in the store (ADR 0015): the control thread takes what the
// workers counted (filters::UsageBook) every `server.portal.usage_flush` and at shutdown, and
// adds it to the store, so that usage is shared by the nodes and survives restarts. What a
// failed write could not add is tried again with the next one. A store that keeps no usage
// (the file) leaves it in the book: the portal then shows this node's count since it started.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "filters/subscription/usage_book.h"
#include "store/entity_store.h"

namespace portico::server {

class UsageKeeper {
 public:
  UsageKeeper(std::shared_ptr<filters::UsageBook> book, store::EntityStore& store)
      : book_(std::move(book)), store_(store) {}

  // Adds what was counted since the last flush to the store; "" or the store's error.
  std::string flush(std::chrono::system_clock::time_point now);
  // The portal's usage report of `application` over `days` days up to `now`'s day: the
  // store's records, the ones not written yet and the book's.
  nlohmann::json report(const std::string& application, int days,
                        std::chrono::system_clock::time_point now) const;

  static constexpr std::size_t kMaxUnsaved = 100000;  // records kept while the store fails

 private:
  std::shared_ptr<filters::UsageBook> book_;
  store::EntityStore& store_;
  std::vector<store::UsageRecord> unsaved_;
};

}  // namespace portico::server
