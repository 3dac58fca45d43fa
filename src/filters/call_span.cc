#include "filters/call_span.h"

#include "api/worker_services.h"
#include "observability/tracing.h"

namespace portico::filters {

void CallSpan::begin(const api::RequestContext& ctx, std::string name) {
  active_ = ctx.trace.sampled && ctx.worker;
  if (!active_) return;
  span_ = api::Span{};
  span_.id = ctx.worker->newSpanId();
  span_.parent = ctx.trace.span;
  span_.kind = 3;
  span_.name = std::move(name);
  span_.start_ns = api::unixNanos();
}

void CallSpan::propagate(const api::RequestContext& ctx, http::HeaderList& headers) const {
  if (active_)
    headers.set("traceparent", observability::formatTraceparent(ctx.trace, span_.id, true));
}

void CallSpan::end(api::RequestContext& ctx, bool error) {
  if (!active_) return;
  active_ = false;
  span_.end_ns = api::unixNanos();
  span_.error = error;
  ctx.trace.children.push_back(std::move(span_));
}

}  // namespace portico::filters
