#pragma once
// One worker's requests on each side of a config release (ADR 0014): answered requests, 5xx
// answers and a latency histogram fine enough (10% steps) that two sides' p99 can be compared.
// Written by the worker only while a release runs; the control thread sums the workers and
// judges the difference between two readings (the counters only grow).
#include <array>
#include <chrono>
#include <cstdint>

#include "observability/counter.h"

namespace portico::observability {

// Bucket i holds latencies up to kFirstBound * kGrowth^i; the last one everything above.
class FineLatency {
 public:
  static constexpr std::size_t kBuckets = 160;
  static constexpr double kFirstBound = 50e-6;  // seconds
  static constexpr double kGrowth = 1.1;        // 50 us .. ~200 s
  static std::size_t bucketOf(std::chrono::nanoseconds d);
  static double upperBound(std::size_t bucket);  // seconds

  void observe(std::chrono::nanoseconds d) { buckets_[bucketOf(d)].add(); }
  std::uint64_t at(std::size_t bucket) const { return buckets_[bucket].get(); }

 private:
  std::array<Counter, kBuckets> buckets_;
};

struct ReleaseSideStats {
  Counter requests;
  Counter errors_5xx;
  FineLatency latency;

  void record(int status, std::chrono::nanoseconds latency_ns) {
    requests.add();
    if (status >= 500 || status == 0) errors_5xx.add();
    latency.observe(latency_ns);
  }
};

enum ReleaseSide : std::size_t { kStableSide = 0, kCandidateSide = 1 };

// One side's totals, summed over workers: a value the control thread keeps and subtracts.
struct ReleaseTotals {
  std::uint64_t requests = 0;
  std::uint64_t errors_5xx = 0;
  std::array<std::uint64_t, FineLatency::kBuckets> latency{};

  void add(const ReleaseSideStats& s);
  // What was counted after `earlier` (an older reading of the same counters).
  ReleaseTotals since(const ReleaseTotals& earlier) const;
  // The latency under which `q` (0..1) of the requests answered, in ms (a bucket's upper
  // bound: within 10%); 0 without requests.
  double quantileMs(double q) const;
};

}  // namespace portico::observability
