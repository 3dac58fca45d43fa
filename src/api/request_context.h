#pragma once
// What a filter sees of one request. Owned by the request's session; valid from route match
// until onLog returns. Filters run on the worker thread that owns the connection.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/body_transform.h"
#include "api/filter_state.h"
#include "api/trace.h"
#include "api/upstream_calls.h"
#include "http/codec/message_head.h"

namespace portico::api {

class WorkerServices;
using Clock = std::chrono::steady_clock;

// A known caller (config `consumers`), as filters see it. Owned by the config snapshot.
struct Consumer {
  std::string name;
  std::string custom_id;
  std::vector<std::string> groups;
  std::string groups_joined;  // "a,b", as sent upstream
  std::uint32_t index = 0;    // position in its snapshot's directory (per-consumer metrics)
  bool inGroup(std::string_view group) const {
    for (const auto& g : groups)
      if (g == group) return true;
    return false;
  }
};

// Why a request was refused by an auth or access filter (a small fixed set: metric labels).
enum class AuthFailure : unsigned char {
  None,
  MissingCredentials,  // 401: nothing to check
  InvalidCredentials,  // 401: checked and refused (never says which part was wrong)
  Forbidden,           // 403: authenticated but not allowed (acl)
  AddressDenied,       // 403: ip-restriction
  Count
};

// A response that Portico answers itself (404, 401, a mock...).
struct LocalReply {
  int status = 200;
  http::HeaderList headers;
  std::string body;
  // A body shared with others (a cached answer), sent instead of `body` without a copy.
  std::shared_ptr<const std::string> shared_body;
};

struct RequestContext {
  // The request as it will be forwarded. Filters may change headers and path.
  http::RequestHead* request = nullptr;
  // The response head, from onResponseHeaders on (upstream or local reply).
  http::ResponseHead* response = nullptr;

  std::string request_id;
  // The worker running the request (Redis connections...); null in unit tests.
  WorkerServices* worker = nullptr;
  // Upstream calls on behalf of this request (see api/upstream_calls.h); null in unit tests
  // that run a filter alone.
  UpstreamCalls* calls = nullptr;
  // 0 for a client's request; 1 + the caller's for a call to an internal route.
  unsigned call_depth = 0;
  // Typed per-request state of filters.
  FilterState state;
  // The position in the request's chain of the filter whose request phase runs (a cache's
  // background refresh replays the request from there).
  std::size_t filter_index = 0;
  // This request replays a client's (api::CallRequest::replay): its first filter asked for it.
  bool replay = false;
  std::string client_ip;
  std::uint16_t client_port = 0;
  // TLS: whether the client connection is encrypted, and the client certificate's verified
  // identity (empty when none was presented or it did not verify). Valid for the connection.
  bool secure = false;
  std::string_view protocol;  // "HTTP/1.1", "HTTP/1.0" or "HTTP/2"
  std::string_view tls_client_subject;
  std::string_view tls_client_sans;
  // These point into the config snapshot, which outlives the request.
  std::string_view route_name;       // empty when no route matched
  std::string_view upstream_name;    // empty for local replies
  std::string_view upstream_target;  // address of the last attempt
  // Path and query sent upstream (after rewrites); set just before the upstream exchange.
  std::string_view forward_target;
  std::vector<std::pair<std::string, std::string>> path_params;

  // Set by an auth filter that accepted the request (or to the route's anonymous consumer).
  const Consumer* consumer = nullptr;
  bool authenticated = false;  // an auth filter accepted the request (maybe without a consumer)
  bool anonymous = false;
  AuthFailure auth_failure = AuthFailure::None;  // set with a refusal (Reply / AuthFailed)

  // Distributed tracing: ids and the child spans recorded (filters may add their own).
  TraceContext trace;

  // A filter's lower request-body limit for this request (0: the listener's).
  std::uint64_t max_body_bytes = 0;

  // Set by a filter that answers locally (FilterStatus::Reply).
  LocalReply local_reply;
  // Set by a request body transform that failed and wrote the client's answer in local_reply
  // itself (a validator's report) instead of the generic JSON error.
  bool local_reply_set = false;

  // Filled in as the request progresses; read by onLog.
  std::string original_method;
  std::string original_path;  // target as received, before rewrites
  int status = 0;
  std::uint64_t bytes_received = 0;  // request body bytes from the client
  std::uint64_t bytes_sent = 0;      // response bytes to the client, head included
  int upstream_attempts = 0;
  Clock::time_point start;
  Clock::duration upstream_latency{};  // from first upstream attempt to its response head
  Clock::duration total_latency{};     // set just before onLog
  std::string error;                   // short reason when Portico answered an error
  std::chrono::system_clock::time_point wall_start;

  // Body transforms, in the order installed (see api/body_transform.h). A request transform is
  // installed from onRequestHeaders, a response one from onResponseHeaders.
  void transformRequestBody(std::unique_ptr<BodyTransform> t) {
    request_transforms.push_back(std::move(t));
  }
  void transformResponseBody(std::unique_ptr<BodyTransform> t) {
    response_transforms.push_back(std::move(t));
  }
  std::vector<std::unique_ptr<BodyTransform>> request_transforms;
  std::vector<std::unique_ptr<BodyTransform>> response_transforms;

  // Back to a fresh request, keeping string capacity for the next one on the connection.
  void reset() {
    request = nullptr;
    response = nullptr;
    request_id.clear();
    route_name = upstream_name = upstream_target = forward_target = {};
    path_params.clear();
    consumer = nullptr;
    authenticated = false;
    anonymous = false;
    replay = false;
    auth_failure = AuthFailure::None;
    max_body_bytes = 0;
    trace.reset();
    local_reply.status = 200;
    local_reply.headers.clear();
    local_reply.body.clear();
    local_reply.shared_body.reset();
    local_reply_set = false;
    original_method.clear();
    original_path.clear();
    status = 0;
    bytes_received = bytes_sent = 0;
    upstream_attempts = 0;
    upstream_latency = total_latency = {};
    error.clear();
    if (!state.empty()) state.clear();
    request_transforms.clear();
    response_transforms.clear();
  }
};

}  // namespace portico::api
