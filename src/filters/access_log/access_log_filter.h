#pragma once
// access-log: one line per request (JSON, or a template), written off the worker threads through a
// bounded queue (see observability/log_writer). The file is reopened on SIGUSR1 for logrotate.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/filter.h"
#include "core/result.h"

namespace portico::filters {

// A template line such as `$client "$method $path" $status`: literal text, each part followed
// by a field ("" for none). `$name` runs to the first character that is not a letter, digit or
// underscore; `$$` is a dollar sign.
struct CompiledTemplate {
  struct Part {
    std::string literal;
    std::string field;
  };
  std::vector<Part> parts;
};

struct AccessLogConfig {
  std::string path = "stdout";
  std::vector<std::string> fields;  // empty = all of kAccessLogFields
  double sample = 1.0;              // ratio of requests logged (errors always, see below)
  bool errors_only = false;         // only status >= 400, and requests Portico failed
  std::optional<CompiledTemplate> line_template;  // set: text lines instead of JSON
};

// Every field the access log knows, in output order.
extern const std::vector<std::string> kAccessLogFields;

// Formats one line (no newline) with the chosen fields.
std::string formatAccessLogLine(const api::RequestContext& ctx,
                                const std::vector<std::string>& fields);

Result<CompiledTemplate> parseAccessLogTemplate(std::string_view text);
std::string formatAccessLogLine(const api::RequestContext& ctx, const CompiledTemplate& t);

api::FilterType accessLogFilterType();

}  // namespace portico::filters
