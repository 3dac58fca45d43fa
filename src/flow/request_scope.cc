#include "flow/request_scope.h"

namespace portico::flow {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string urlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
               hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

json queryValue(std::string_view query, const std::string& name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (urlDecode(pair.substr(0, eq)) == name)
      return eq == std::string_view::npos ? std::string() : urlDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return nullptr;
}

bool requestOnly(const Reference& ref) {
  return ref.root != Reference::Root::Call && ref.root != Reference::Root::Item;
}

json RequestScope::resolve(const Reference& ref) const {
  switch (ref.root) {
    case Reference::Root::RequestPath:
      for (const auto& [k, v] : ctx_.path_params)
        if (k == ref.name) return v;
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
