#pragma once
// `/api/stats`: what the dashboard shows, as JSON. Built from the same summed counters as
// /metrics, the control thread's traffic history and the live snapshot.
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "observability/metrics.h"
#include "observability/stats_history.h"
#include "observability/stats_totals.h"
#include "snapshot/snapshot.h"

namespace portico::server {

struct StatsReportInputs {
  const snapshot::Snapshot* snapshot = nullptr;
  const observability::Totals* totals = nullptr;
  const observability::StatsHistory* history = nullptr;
  const observability::ProcessStats* process = nullptr;
  std::vector<observability::ErrorEvent> errors;  // any order; the newest are kept
  nlohmann::json reloads = nlohmann::json::array();
  std::size_t workers = 0;
  std::int64_t interval_ms = 0;
};

// Routes carry the last minute of their rate only (a sparkline); upstreams and all routes
// together carry the whole history.
nlohmann::json statsReport(const StatsReportInputs& in);

// `/api/stats/routes/NAME`: one route's whole history; null when the live config has no such
// route.
nlohmann::json routeHistory(const snapshot::Snapshot& snapshot,
                            const observability::StatsHistory& history, const std::string& name);

// The routes and upstreams of `snapshot` only: the totals a history samples (names a reload
// removed drop out of the charts).
observability::Totals liveTotals(observability::Totals all, const snapshot::Snapshot& snapshot);

}  // namespace portico::server
