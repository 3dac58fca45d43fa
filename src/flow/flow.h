#pragma once
// A route's flow (config `routes[].flow`): calls to upstreams, URLs or internal routes whose
// requests are templates over the client's request and each other's answers, run concurrently
// where they do not depend on each other, and one composed JSON answer. Compiled and checked at
// config load (references, cycles, names); run per request by FlowRun (flow/flow_run.h).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/diagnostics.h"
#include "flow/template.h"

namespace portico::flow {

struct FlowCall {
  std::string name;
  // Where to: exactly one.
  std::string upstream;
  std::optional<StringTemplate> url;  // an absolute http(s) URL (a template)
  std::string route;                  // an internal route
  std::string method = "GET";
  StringTemplate path;  // path and query (upstream and route calls)
  std::vector<std::pair<std::string, StringTemplate>> query;  // a null value drops the key
  std::vector<std::pair<std::string, StringTemplate>> headers;
  std::optional<JsonTemplate> body;  // sent as application/json
  bool forward_body = false;         // the client's body, with its Content-Type
  bool required = true;
  std::chrono::milliseconds timeout{0};  // 0: the upstream's own timeouts
  std::optional<StringTemplate> for_each;
  std::size_t concurrency = 8;
  std::string group;  // merge: the answer goes under this key
  bool propagate_status = false;
  enum class Format { Auto, Json, Text, Xml, Form };
  Format format = Format::Auto;
  std::string ca_file;            // url calls over https
  std::vector<std::size_t> deps;  // the calls whose answers it uses (indices, earlier first)
};

struct Flow {
  std::vector<FlowCall> calls;
  std::unordered_map<std::string, std::size_t> call_index;  // name -> position in calls
  int status = 200;
  std::optional<JsonTemplate> body;  // none: the merge of the answers
  std::vector<std::pair<std::string, StringTemplate>> headers;
  enum class Merge { Last, Error };
  Merge merge = Merge::Last;
  bool respond_xml = false;               // respond.format: xml
  std::string respond_root = "response";  // its document element
  std::uint64_t max_buffer = 8 * 1024 * 1024;
  bool needs_request_body = false;  // forward_body, or a request.body reference
};

// What the config names, for checks.
struct FlowNames {
  std::function<bool(const std::string&)> upstream_exists;
  std::function<bool(const std::string&)> internal_route_exists;
};

// Compiles `node` (a route's `flow`); errors go to `diag` under `path`. Null on error.
std::shared_ptr<const Flow> compileFlow(const json& node, const std::string& path,
                                        const FlowNames& names, config::Diagnostics& diag);

}  // namespace portico::flow
