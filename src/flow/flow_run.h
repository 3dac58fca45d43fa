#pragma once
// One request's run of a flow: starts every call whose dependencies have answered (so
// independent calls overlap and the latency is that of the longest chain), runs for_each calls
// item by item within their concurrency, then composes the answer. Works through
// api::UpstreamCalls only: callbacks arrive on the request's worker, one at a time.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/request_context.h"
#include "flow/flow.h"

namespace portico::flow {

// What became of one call (or one item of a for_each call).
struct CallOutcome {
  bool finished = false;
  bool ok = false;
  int status = 0;  // the answer's status; 0 when there was none
  http::HeaderList headers;
  json body;          // parsed JSON, a string (text), or null
  std::string error;  // why it failed
  int error_status = 0;
};

class FlowRun {
 public:
  // `request_body` is the client's whole body when the flow needs it (else empty); it and `ctx`
  // outlive the run. `max_calls` bounds a for_each (server.limits.max_calls_per_request).
  FlowRun(const Flow& flow, api::RequestContext& ctx, std::string request_body,
          std::size_t max_calls);
  ~FlowRun();
  FlowRun(const FlowRun&) = delete;
  FlowRun& operator=(const FlowRun&) = delete;

  // Starts the calls; `done` runs once, when every call has finished (maybe before start()
  // returns when nothing had to wait).
  void start(std::function<void()> done);

  // After done: the answer (status, headers, body), or the error to answer (status and why).
  int status = 0;
  http::HeaderList headers;
  std::string body;
  bool failed = false;
  std::string error;

 private:
  struct CallRun;
  class RunScope;

  void launch(std::size_t i);
  void launchItem(std::size_t i, std::size_t item);
  void sendRequest(std::size_t i, std::size_t item, const RunScope& scope);
  void finished(std::size_t i, std::size_t item, api::CallResponse r);
  void settle(std::size_t i);  // every item of a call is in
  void finishRun();            // composes the answer and runs `done`
  void compose();
  void fail(int status, std::string why);
  // Runs a step of the flow; an exception from it (a bug) ends the flow with a 502 at once,
  // so the request is answered instead of waiting for a `done` that would never come. False
  // then: `done` has run, and may have destroyed this run.
  template <typename Step>
  bool guarded(Step&& step);
  const json& requestJson() const;  // the request body as JSON (null when it is not)

  const Flow& flow_;
  api::RequestContext& ctx_;
  std::string request_body_;
  std::size_t max_calls_;
  mutable std::unique_ptr<json> request_json_;  // parsed on first use
  std::vector<CallRun> calls_;
  std::size_t pending_ = 0;  // calls not finished
  std::function<void()> done_;
  bool starting_ = false;

  friend class RunScope;
};

}  // namespace portico::flow
