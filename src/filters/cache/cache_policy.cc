#include "filters/cache/cache_policy.h"

#include <algorithm>
#include <charconv>

namespace portico::filters::cache {
namespace {

using http::trimSpaces;

// A delta-seconds value ("60" or "\"60\""); malformed is 0 (RFC 9111 §1.2.2: treat as stale).
Seconds deltaSeconds(std::string_view v) {
  v = trimSpaces(v);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc::result_out_of_range) return Seconds(std::int64_t{1} << 31);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0) return Seconds(0);
  return Seconds(std::min<std::int64_t>(n, std::int64_t{1} << 31));
}

// Each item of a comma-separated list, ignoring commas inside quoted strings.
template <class Fn>
void forEachItem(std::string_view value, Fn&& fn) {
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size() && value[i] == '"') quoted = !quoted;
    if (i == value.size() || (value[i] == ',' && !quoted)) {
      if (std::string_view item = trimSpaces(value.substr(start, i - start)); !item.empty())
        fn(item);
      start = i + 1;
    }
  }
}

// Each `name[=argument]` directive of a Cache-Control value.
template <class Fn>
void forEachDirective(std::string_view value, Fn&& fn) {
  forEachItem(value, [&](std::string_view d) {
    const std::size_t eq = d.find('=');
    fn(trimSpaces(d.substr(0, eq)),
       eq == std::string_view::npos ? std::string_view{} : trimSpaces(d.substr(eq + 1)));
  });
}

bool sameEtag(std::string_view a, std::string_view b) {  // weak comparison
  if (a.starts_with("W/")) a.remove_prefix(2);
  if (b.starts_with("W/")) b.remove_prefix(2);
  return a == b;
}

}  // namespace

CacheControl parseCacheControl(const http::HeaderList& headers) {
  CacheControl cc;
  for (const auto& h : headers) {
    if (!http::equalsIgnoreCase(h.name, "cache-control")) continue;
    forEachDirective(h.value, [&](std::string_view name, std::string_view arg) {
      if (http::equalsIgnoreCase(name, "no-store")) {
        cc.no_store = true;
      } else if (http::equalsIgnoreCase(name, "no-cache")) {
        cc.no_cache = true;
      } else if (http::equalsIgnoreCase(name, "private")) {
        cc.is_private = true;
      } else if (http::equalsIgnoreCase(name, "public")) {
        cc.is_public = true;
      } else if (http::equalsIgnoreCase(name, "must-revalidate") ||
                 http::equalsIgnoreCase(name, "proxy-revalidate")) {
        cc.must_revalidate = true;
      } else if (http::equalsIgnoreCase(name, "max-age")) {
        cc.max_age = deltaSeconds(arg);
      } else if (http::equalsIgnoreCase(name, "s-maxage")) {
        cc.s_maxage = deltaSeconds(arg);
      } else if (http::equalsIgnoreCase(name, "stale-while-revalidate")) {
        cc.stale_while_revalidate = deltaSeconds(arg);
      } else if (http::equalsIgnoreCase(name, "stale-if-error")) {
        cc.stale_if_error = deltaSeconds(arg);
      }
    });
  }
  return cc;
}

StoreDecision decideStore(const StorePolicy& policy, int status, const http::HeaderList& headers,
                          bool authorization, http::SystemTime now) {
  StoreDecision d;
  auto refuse = [&](std::string_view why) {
    d.reason = why;
    return d;
  };
  if (status >= 500 ||
      std::find(policy.statuses.begin(), policy.statuses.end(), status) == policy.statuses.end())
    return refuse("status");
  if (headers.find("set-cookie")) return refuse("set-cookie");
  const CacheControl cc = parseCacheControl(headers);
  // Whatever honor_upstream says: a response marked private or not to be stored never is.
  if (cc.no_store) return refuse("no-store");
  if (cc.is_private) return refuse("private");
  if (cc.no_cache) return refuse("no-cache");  // would need revalidation on every use
  for (const auto& h : headers)
    if (http::equalsIgnoreCase(h.name, "vary") && trimSpaces(h.value) == "*") return refuse("vary");
  d.shared_ok = cc.is_public || cc.s_maxage.has_value();
  if (authorization && !policy.consumer_key && !d.shared_ok) return refuse("authorization");

  d.fresh_for = policy.ttl;
  d.stale_while_revalidate = policy.stale_while_revalidate;
  d.stale_if_error = policy.stale_if_error;
  if (policy.honor_upstream) {
    if (cc.s_maxage) {
      d.fresh_for = *cc.s_maxage;
    } else if (cc.max_age) {
      d.fresh_for = *cc.max_age;
    } else if (const std::string* expires = headers.find("expires")) {
      // Expires relative to the origin's own Date (clock skew does not matter), else to ours.
      const auto at = http::parseHttpDate(*expires);
      const std::string* date_header = headers.find("date");
      const auto date = date_header ? http::parseHttpDate(*date_header) : std::nullopt;
      d.fresh_for =
          at ? std::max(Seconds(0), std::chrono::duration_cast<Seconds>(*at - (date ? *date : now)))
             : Seconds(0);
    }
    if (const std::string* age = headers.find("age")) d.initial_age = deltaSeconds(*age);
    if (cc.stale_while_revalidate) d.stale_while_revalidate = *cc.stale_while_revalidate;
    if (cc.stale_if_error) d.stale_if_error = *cc.stale_if_error;
    if (cc.must_revalidate) d.stale_while_revalidate = d.stale_if_error = Seconds(0);
  }
  if (d.fresh_for <= d.initial_age) return refuse("expired");
  d.store = true;
  return d;
}

bool notModified(const http::HeaderList& request, const http::HeaderList& stored) {
  if (const std::string* inm = request.find("if-none-match")) {
    const std::string* etag = stored.find("etag");
    bool match = false;
    forEachItem(*inm, [&](std::string_view tag) {
      match = match || tag == "*" || (etag && sameEtag(tag, *etag));
    });
    return match;
  }
  const std::string* ims = request.find("if-modified-since");
  const std::string* lm = stored.find("last-modified");
  if (!ims || !lm) return false;
  const auto since = http::parseHttpDate(*ims);
  const auto modified = http::parseHttpDate(*lm);
  return since && modified && *modified <= *since;
}

}  // namespace portico::filters::cache
