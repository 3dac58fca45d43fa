#pragma once
// Absolute http:// and https:// URLs, as outgoing calls name their destination.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace portico::http {

struct AbsoluteUrl {
  bool https = false;
  std::string host;        // without the brackets of an IPv6 literal
  std::uint16_t port = 0;  // the scheme's default (80, 443) when the URL names none
  std::string authority;   // as written: host[:port]
  std::string target;      // path and query, "/" when empty; the fragment is dropped
};

// Refuses other schemes, user info, an empty host and a bad port.
Result<AbsoluteUrl> parseAbsoluteUrl(std::string_view url);

// A query component percent-decoded ('+' is a space; a malformed escape is kept as is).
std::string decodeQueryComponent(std::string_view s);
// A path segment (or other %XX-escaped text) decoded: '+' stays itself.
std::string decodePathComponent(std::string_view s);
// Percent-encodes all but RFC 3986's unreserved characters.
std::string encodeQueryComponent(std::string_view text);
// Whether a path (without its query) holds a "." or ".." segment, which a server resolves
// against the segments before it: a template's value must not climb out of where it goes.
bool hasDotSegment(std::string_view path);
// The path of an origin-form target or an absolute URL, without its query and fragment.
std::string_view pathOfTarget(std::string_view target);

// A request's path as routing and the upstream will both read it (RFC 3986 6.2.2): escapes of
// unreserved characters decoded (`%2E` is a dot, `%7E` a tilde), then "." and ".." segments
// removed (5.2.4). Other escapes stay as they are (`%2F` is not a `/`). Without it a route
// on `/public/` would forward `/public/%2E%2E/admin`, which the upstream reads as `/admin`.
// A `%` without two hex digits after it is refused (nginx answers such a path 400 too), and so
// is a dot segment that shows when `%2F`, `%5C` or `\` are read as `/` (`/public/..%2Fadmin`):
// servers that decode those before resolving the path would climb. So is a dot segment with
// parameters (`/public/..;/admin`), which Java servers read as `..` (Envoy and nginx let it
// through; it is the classic way past a proxy's path rules to a Tomcat behind it).
enum class PathNormalization {
  Unchanged,
  Changed,
  ClimbsAboveRoot,
  InvalidEscape,
  EscapedDotSegment,
  DotSegmentWithParameters
};
PathNormalization normalizePath(std::string& path);
// Why a path was refused (a 400's message), or nullptr for Unchanged and Changed.
const char* refusalOf(PathNormalization n);

// The value of query parameter `name` in `query` (percent-decoded), and where it sits.
struct QueryParam {
  bool found = false;
  std::string value;
  std::size_t begin = 0, end = 0;  // the whole "name=value" pair in `query`
};
QueryParam findQueryParam(std::string_view query, std::string_view name);

}  // namespace portico::http
