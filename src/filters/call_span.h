#pragma once
// A client span for a call a filter makes on behalf of a request: an authorization service,
// a key set (JWKS, discovery), Redis. Begun on the worker; ended on whichever thread the answer
// arrives on, before the filter completes (the worker does not touch the request meanwhile).
// Does nothing when the request is not sampled.
#include <string>

#include "api/http_fetch.h"
#include "api/request_context.h"
#include "http/header_list.h"

namespace portico::filters {

class CallSpan {
 public:
  void begin(const api::RequestContext& ctx, std::string name);
  bool active() const { return active_; }
  api::Span& span() { return span_; }
  // Sends the trace on: the callee's spans become children of this one.
  void propagate(const api::RequestContext& ctx, http::HeaderList& headers) const;
  // Adds the span to the request's trace.
  void end(api::RequestContext& ctx, bool error);

 private:
  api::Span span_;
  bool active_ = false;
};

// The attributes of an HTTP call's span: its URL, and the status or the error.
void traceHttpCall(CallSpan& span, const std::string& url, const api::HttpResponse& r);

}  // namespace portico::filters
