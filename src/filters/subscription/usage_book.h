#pragma once
// What each application used, per API and UTC day (the developer portal's usage, ADR 0015):
// requests, 4xx, 5xx and a latency histogram for the p95. Workers record from the subscription
// filter's log phase into their own shard (a lock only the reader contends, once per page
// view); the portal reads it on the control thread. Kept in this node's memory for the last
// kDays days.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "observability/release_stats.h"

namespace portico::filters {

class UsageBook {
 public:
  static constexpr std::int64_t kDays = 31;

  // `day`: days since 1970-01-01 (UTC).
  void record(int worker, const std::string& application, const std::string& api, std::int64_t day,
              int status, std::chrono::nanoseconds latency);
  // {"data": [{"day": "2026-12-05", "api", "requests", "errors_4xx", "errors_5xx",
  // "p95_ms"}]} for the `days` days up to `today`, newest first (days without use left out).
  nlohmann::json report(const std::string& application, std::int64_t today, int days) const;

  static std::int64_t dayOf(std::chrono::system_clock::time_point t);

 private:
  struct Counts {
    std::uint64_t requests = 0, errors_4xx = 0, errors_5xx = 0;
    std::array<std::uint32_t, observability::FineLatency::kBuckets> latency{};
  };
  using Key = std::tuple<std::string, std::int64_t, std::string>;  // application, day, api
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::map<Key, Counts> counts;
  };
  std::array<Shard, 16> shards_;
};

}  // namespace portico::filters
