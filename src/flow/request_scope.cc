#include "flow/request_scope.h"

#include "http/url.h"

namespace portico::flow {
json queryValue(std::string_view query, const std::string& name) {
  const http::QueryParam p = http::findQueryParam(query, name);
  return p.found ? json(p.value) : json();
}

bool requestOnly(const Reference& ref) {
  return ref.root != Reference::Root::Call && ref.root != Reference::Root::Item;
}

json RequestScope::resolve(const Reference& ref) const {
  switch (ref.root) {
    case Reference::Root::RequestPath:
      // Captured from the path as sent; a value is what it spells, as a query value is.
      for (const auto& [k, v] : ctx_.path_params)
        if (k == ref.name) return http::decodePathComponent(v);
      return nullptr;
    case Reference::Root::RequestQuery:
      return ctx_.request ? queryValue(ctx_.request->query, ref.name) : json();
    case Reference::Root::RequestHeader: {
      const std::string* v = ctx_.request ? ctx_.request->headers.find(ref.name) : nullptr;
      return v ? json(*v) : json();
    }
    case Reference::Root::RequestBody:
      return body_ ? walk(*body_, ref.steps) : json();
    case Reference::Root::ConsumerName:
      return ctx_.consumer ? json(ctx_.consumer->name) : json();
    case Reference::Root::ConsumerGroups:
      return ctx_.consumer ? json(ctx_.consumer->groups) : json();
    case Reference::Root::Call:
    case Reference::Root::Item:
      break;
  }
  return nullptr;
}

}  // namespace portico::flow
