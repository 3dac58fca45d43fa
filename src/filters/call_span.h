#pragma once
// A client span for a call a filter makes on behalf of a request outside the upstream-call
// engine (which records its own): a key set (JWKS, discovery), Redis. Begun on the worker; ended on
// whichever thread the answer arrives on, before the filter completes (the worker does not touch
// the request meanwhile). Does nothing when the request is not sampled.
#include <string>

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

}  // namespace portico::filters
