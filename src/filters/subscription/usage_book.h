#pragma once
// What each application used, per API and UTC day (the developer portal's usage, ADR 0015):
// requests, 4xx, 5xx, a latency histogram for the p95, and the last quota figures its answers
// carried. Workers record from the subscription filter's log phase into their own shard (a
// lock only the reader contends); the control thread reads it for the portal and, when the
// store keeps usage, takes what was counted every minute and adds it to the store. A record's
// value is JSON (below), merged by merge() wherever several meet: shards, nodes, the store.
//   {"requests", "errors_4xx", "errors_5xx", "latency": {"<bucket>": n},
//    "quota": {"limit", "remaining", "resets_at" (Unix s), "seen_at" (Unix µs)}}
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "observability/release_stats.h"
#include "store/entity_store.h"

namespace portico::filters {

// The X-Quota-* figures of one answer (limit < 0: it carried none).
struct QuotaSeen {
  std::int64_t limit = -1;
  std::int64_t remaining = 0;
  std::int64_t resets_at = 0;  // Unix seconds
  std::int64_t seen_at = 0;    // Unix microseconds
};

class UsageBook {
 public:
  static constexpr std::int64_t kDays = 31;

  // `day`: days since 1970-01-01 (UTC).
  void record(int worker, const std::string& application, const std::string& api, std::int64_t day,
              int status, std::chrono::nanoseconds latency, const QuotaSeen& quota = {});
  // Everything counted since the last take(), which this book forgets (one record per
  // application, day and API).
  std::vector<store::UsageRecord> take();
  // Records of the same application, day and API merged into one.
  static std::vector<store::UsageRecord> coalesce(std::vector<store::UsageRecord> records);
  // What this book holds for `application` from `from_day` on (kept).
  std::vector<store::UsageRecord> peek(const std::string& application, std::int64_t from_day) const;

  // Adds `add` to `into` (counts and buckets summed; the quota seen last wins).
  static void merge(nlohmann::json& into, const nlohmann::json& add);
  // {"data": [{"day": "2026-12-05", "api", "requests", "errors_4xx", "errors_5xx", "p95_ms"}]
  //  newest first (days without use left out), "quota": [{"api", "limit", "remaining",
  //  "resets_at"}]} from one application's records, for the `days` days up to `today`.
  static nlohmann::json report(const std::vector<store::UsageRecord>& records, std::int64_t today,
                               int days, std::int64_t now_unix);

  static std::int64_t dayOf(std::chrono::system_clock::time_point t);

 private:
  struct Counts {
    std::uint64_t requests = 0, errors_4xx = 0, errors_5xx = 0;
    std::array<std::uint32_t, observability::FineLatency::kBuckets> latency{};
    QuotaSeen quota;
  };
  using Key = std::tuple<std::string, std::int64_t, std::string>;  // application, day, api
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::map<Key, Counts> counts;
  };
  static nlohmann::json valueOf(const Counts& c);

  std::array<Shard, 16> shards_;
};

}  // namespace portico::filters
