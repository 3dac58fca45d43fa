#pragma once
// What the response cache may store and for how long (RFC 9111, as a shared cache): the
// response's Cache-Control, Expires, Date and Age against the filter's configuration.
#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "http/header_list.h"
#include "http/http_date.h"

namespace portico::filters::cache {

using Seconds = std::chrono::seconds;

// The response directives of Cache-Control that a shared cache acts on.
struct CacheControl {
  bool no_store = false;
  bool no_cache = false;
  bool is_private = false;
  bool is_public = false;
  bool must_revalidate = false;  // or proxy-revalidate: never served stale
  std::optional<Seconds> max_age;
  std::optional<Seconds> s_maxage;
  std::optional<Seconds> stale_while_revalidate;
  std::optional<Seconds> stale_if_error;
};

// Every Cache-Control field of `headers`, merged. Malformed values are ignored (a bad max-age
// counts as 0: stale).
CacheControl parseCacheControl(const http::HeaderList& headers);

struct StorePolicy {
  Seconds ttl{60};  // when the response says nothing (or honor_upstream is off)
  Seconds stale_while_revalidate{0};
  Seconds stale_if_error{0};
  bool honor_upstream = true;
  std::vector<int> statuses{200, 203, 204, 301, 404};
  bool consumer_key = false;  // the key includes the consumer: Authorization does not prevent
};

struct StoreDecision {
  bool store = false;
  std::string_view reason;  // why not (Cache-Status detail), or empty
  Seconds fresh_for{0};
  Seconds initial_age{0};  // the response's Age when it arrived
  Seconds stale_while_revalidate{0};
  Seconds stale_if_error{0};
  bool shared_ok = false;  // public: may answer requests that carry Authorization
};

// Whether a GET response with `status` and `headers`, received at `now`, may be stored;
// `authorization`: the request carried credentials.
StoreDecision decideStore(const StorePolicy& policy, int status, const http::HeaderList& headers,
                          bool authorization, http::SystemTime now);

// Conditional requests against a stored response: whether If-None-Match (weak comparison) or,
// without it, If-Modified-Since says the client's copy is current.
bool notModified(const http::HeaderList& request, const http::HeaderList& stored);

}  // namespace portico::filters::cache
