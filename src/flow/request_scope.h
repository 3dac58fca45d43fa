#pragma once
// Template references to the client's request and consumer (request.path/query/header/body,
// consumer.name/groups), resolved from a RequestContext: shared by flows and the transformer
// filters. Call and item references resolve to null here (flows add them).
#include "api/request_context.h"
#include "flow/template.h"

namespace portico::flow {

class RequestScope : public Scope {
 public:
  // `body`: the request body as JSON (null when there is none or it is not JSON).
  RequestScope(const api::RequestContext& ctx, const json* body) : ctx_(ctx), body_(body) {}
  json resolve(const Reference& ref) const override;

 private:
  const api::RequestContext& ctx_;
  const json* body_;
};

// True when every reference of `t` is one RequestScope resolves (no calls, no item).
bool requestOnly(const Reference& ref);

// The first value of `name` in a query string, decoded; null when absent.
json queryValue(std::string_view query, const std::string& name);

}  // namespace portico::flow
