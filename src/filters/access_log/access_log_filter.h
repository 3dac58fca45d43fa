#pragma once
// access-log: one JSON line per request, written off the worker threads through a bounded
// queue (see observability/log_writer). The file is reopened on SIGUSR1 for logrotate.
#include <string>
#include <vector>

#include "api/filter.h"

namespace portico::filters {

struct AccessLogConfig {
  std::string path = "stdout";
  std::vector<std::string> fields;  // empty = all of kAccessLogFields
  double sample = 1.0;              // ratio of requests logged (errors always, see below)
  bool errors_only = false;         // only status >= 400, and requests Portico failed
};

// Every field the access log knows, in output order.
extern const std::vector<std::string> kAccessLogFields;

// Formats one line (no newline) with the chosen fields.
std::string formatAccessLogLine(const api::RequestContext& ctx,
                                const std::vector<std::string>& fields);

api::FilterType accessLogFilterType();

}  // namespace portico::filters
