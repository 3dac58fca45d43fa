#pragma once
// Upstreams for the origins of URL calls (api::CallRequest::url): one per scheme, host and
// port and worker, made on first use and resolved again after a minute. Each is an ordinary
// upstream (default timeouts, one retry on connect failure, pooled connections keyed by its
// address, TLS verified with the system CAs or the call's CA file), so URL calls run through
// the same exchange as everything else; its /metrics series is named after the origin (up to
// OriginUpstreams::kMaxOrigins of them per worker).
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/keyed_hash.h"
#include "core/result.h"
#include "proxy/worker_context.h"

namespace portico::proxy {

struct OriginUpstream {
  config::UpstreamConfig cfg;
  snapshot::Upstream upstream;
  Clock::time_point resolved_at{};
};

// A worker's origins. A URL is a template, so a client may pick among as many origins as the
// template allows: the table keeps at most kMaxOrigins (then drops those resolved longest ago;
// calls running keep theirs), and only the first kMaxOrigins origins get a /metrics series of
// their own, later ones count in one shared series (kOtherOrigins). Keys are hashed with a
// per-process key: a client cannot choose hosts that all fall into one bucket.
struct OriginUpstreams {
  static constexpr std::size_t kMaxOrigins = 256;
  static constexpr const char* kOtherOrigins = "url (other origins)";
  std::unordered_map<std::string, std::shared_ptr<const OriginUpstream>, KeyedHash, std::equal_to<>>
      by_key;
  std::unordered_set<std::string, KeyedHash, std::equal_to<>> own_series;
};

// The upstream for `url`'s origin on this worker.
Task<Result<std::shared_ptr<const OriginUpstream>>> originUpstream(WorkerContext& w,
                                                                   const std::string& url,
                                                                   const std::string& ca_file);
// Parts of an absolute URL: its path and query ("/" when none), and its authority.
std::string originTarget(const std::string& url);
std::string originAuthority(const std::string& url);

}  // namespace portico::proxy
