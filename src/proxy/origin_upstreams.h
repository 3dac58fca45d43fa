#pragma once
// Upstreams for the origins of URL calls (api::CallRequest::url): one per scheme, host and
// port and worker, made on first use and resolved again after a minute. Each is an ordinary
// upstream (default timeouts, one retry on connect failure, pooled connections keyed by its
// address, TLS verified with the system CAs or the call's CA file), so URL calls run through
// the same exchange as everything else; its /metrics series is named after the origin.
#include <memory>
#include <string>
#include <unordered_map>

#include "core/result.h"
#include "proxy/worker_context.h"

namespace portico::proxy {

struct OriginUpstream {
  config::UpstreamConfig cfg;
  snapshot::Upstream upstream;
  Clock::time_point resolved_at{};
};

struct OriginUpstreams {
  std::unordered_map<std::string, std::shared_ptr<const OriginUpstream>> by_key;
};

// The upstream for `url`'s origin on this worker.
Task<Result<std::shared_ptr<const OriginUpstream>>> originUpstream(WorkerContext& w,
                                                                   const std::string& url,
                                                                   const std::string& ca_file);
// Parts of an absolute URL: its path and query ("/" when none), and its authority.
std::string originTarget(const std::string& url);
std::string originAuthority(const std::string& url);

}  // namespace portico::proxy
