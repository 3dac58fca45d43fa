#include "http/url.h"

#include <cctype>

#include <charconv>

namespace portico::http {

Result<AbsoluteUrl> parseAbsoluteUrl(std::string_view url) {
  AbsoluteUrl u;
  std::string_view rest = url;
  if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    u.https = true;
    rest.remove_prefix(8);
  } else {
    return makeError("not an http:// or https:// URL: \"" + std::string(url) + "\"");
  }
  const auto end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  u.target =
      target.empty() || target.front() == '?' ? "/" + std::string(target) : std::string(target);
  if (authority.empty() || authority.find('@') != std::string_view::npos)
    return makeError("invalid host in \"" + std::string(url) + "\"");
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return makeError("invalid host in \"" + std::string(url) + "\"");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return makeError("invalid host in \"" + std::string(url) + "\"");
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return makeError("invalid host in \"" + std::string(url) + "\"");
  u.host = std::string(host);
  u.authority = std::string(authority);
  u.port = u.https ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535)
      return makeError("invalid port in \"" + std::string(url) + "\"");
    u.port = static_cast<std::uint16_t>(value);
  }
  return u;
}

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986's unreserved characters: the same whether escaped or not.
bool isUnreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

}  // namespace

std::string encodeQueryComponent(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (isUnreserved(static_cast<char>(c))) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {

std::string percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string decodeQueryComponent(std::string_view s) {
  return percentDecode(s, true);
}

std::string decodePathComponent(std::string_view s) {
  return percentDecode(s, false);
}

namespace {

// Whether a "." or ".." segment shows when `separatorAt(path, i)` (the length of a separator
// at `i`, 0 for none) splits the path; with `parameters`, also when a segment's `;parameters`
// are left out (`..;x` is `..` to Tomcat, Jetty and Spring).
template <class Separator>
bool splitsIntoDotSegment(std::string_view path, Separator separatorAt, bool parameters = false) {
  std::size_t start = 0;
  for (std::size_t i = 0;;) {
    const std::size_t separator = i < path.size() ? separatorAt(path, i) : 1;
    if (separator == 0) {
      ++i;
      continue;
    }
    std::string_view segment = path.substr(start, i - start);
    if (parameters) segment = segment.substr(0, segment.find(';'));
    if (segment == "." || segment == "..") return true;
    if (i >= path.size()) return false;
    i += separator;
    start = i;
  }
}

std::size_t slashAt(std::string_view path, std::size_t i) {
  return path[i] == '/' ? 1 : 0;
}

}  // namespace

bool hasDotSegment(std::string_view path) {
  return splitsIntoDotSegment(path, slashAt);
}

namespace {

// Decodes the %XX escapes of unreserved characters in place. A `%` not followed by two hex
// digits is refused: kept, it could make a new escape of what is decoded after it (`%2%45`
// would become `%2E`, a dot to the upstream, which decodes once more).
enum class Escapes { Absent, Kept, Decoded, Invalid };
Escapes decodeUnreservedEscapes(std::string& path) {
  std::size_t i = path.find('%');
  if (i == std::string::npos) return Escapes::Absent;
  std::size_t out = i;
  bool decoded = false;
  for (; i < path.size(); ++i) {
    if (path[i] != '%') {
      path[out++] = path[i];
      continue;
    }
    if (i + 2 >= path.size() || hexValue(path[i + 1]) < 0 || hexValue(path[i + 2]) < 0)
      return Escapes::Invalid;
    const char c = static_cast<char>(hexValue(path[i + 1]) * 16 + hexValue(path[i + 2]));
    if (isUnreserved(c)) {
      path[out++] = c;
      decoded = true;
    } else {
      path[out++] = '%';
      path[out++] = path[i + 1];
      path[out++] = path[i + 2];
    }
    i += 2;
  }
  path.resize(out);
  return decoded ? Escapes::Decoded : Escapes::Kept;
}

enum class DotSegments { None, Removed, ClimbAboveRoot };

DotSegments removeDotSegments(std::string& path) {
  if (path.find("/.") == std::string::npos) return DotSegments::None;
  std::string out;
  out.reserve(path.size());
  size_t i = 0;
  while (i < path.size()) {
    size_t next = path.find('/', i + 1);
    std::string_view seg(path.data() + i, (next == std::string::npos ? path.size() : next) - i);
    if (seg == "/.") {
      if (next == std::string::npos) out += '/';
    } else if (seg == "/..") {
      if (out.empty()) return DotSegments::ClimbAboveRoot;
      out.resize(out.rfind('/'));
      if (next == std::string::npos) out += '/';
    } else {
      out += seg;
    }
    i = next == std::string::npos ? path.size() : next;
  }
  if (out.empty()) out = "/";
  if (out == path) return DotSegments::None;  // "/.x": no dot segment after all
  path = std::move(out);
  return DotSegments::Removed;
}

// The length of the separator at `i` for a server that also splits on `\`, `%2F` and `%5C`.
std::size_t separatorAt(std::string_view path, std::size_t i) {
  if (path[i] == '/' || path[i] == '\\') return 1;
  if (path[i] != '%' || i + 2 >= path.size()) return 0;
  const char a = path[i + 1];
  const char b = static_cast<char>(path[i + 2] | 0x20);
  return (a == '2' && b == 'f') || (a == '5' && b == 'c') ? 3 : 0;
}

}  // namespace

PathNormalization normalizePath(std::string& path) {
  const Escapes escapes = decodeUnreservedEscapes(path);
  if (escapes == Escapes::Invalid) return PathNormalization::InvalidEscape;
  const DotSegments dots = removeDotSegments(path);
  if (dots == DotSegments::ClimbAboveRoot) return PathNormalization::ClimbsAboveRoot;
  // `/public/..%2Fadmin` has no dot segment for Portico, and `%2F` stays escaped; but a
  // server that decodes it (or reads `\` as `/`) before resolving the path serves `/admin`.
  if ((escapes != Escapes::Absent || path.find('\\') != std::string::npos) &&
      splitsIntoDotSegment(path, separatorAt))
    return PathNormalization::EscapedDotSegment;
  // `/public/..;/admin`: `..;` is a segment like any other to Portico and to the RFC, but
  // servers that drop a segment's `;parameters` before resolving the path serve `/admin`.
  if (path.find(';') != std::string::npos && splitsIntoDotSegment(path, separatorAt, true))
    return PathNormalization::DotSegmentWithParameters;
  return dots == DotSegments::Removed || escapes == Escapes::Decoded ? PathNormalization::Changed
                                                                     : PathNormalization::Unchanged;
}

const char* refusalOf(PathNormalization n) {
  switch (n) {
    case PathNormalization::Unchanged:
    case PathNormalization::Changed:
      return nullptr;
    case PathNormalization::ClimbsAboveRoot:
      return "path climbs above root";
    case PathNormalization::InvalidEscape:
      return "invalid percent-encoding in path";
    case PathNormalization::EscapedDotSegment:
      return "dot segment behind an escaped slash in path";
    case PathNormalization::DotSegmentWithParameters:
      return "dot segment with parameters in path";
  }
  return "invalid path";
}

std::string_view pathOfTarget(std::string_view target) {
  if (const std::size_t scheme = target.find("://"); scheme != std::string_view::npos) {
    const std::size_t end = target.find_first_of("/?#", scheme + 3);  // of the authority
    target = end == std::string_view::npos || target[end] != '/' ? std::string_view()
                                                                 : target.substr(end);
  }
  return target.substr(0, target.find_first_of("?#"));
}

QueryParam findQueryParam(std::string_view query, std::string_view name) {
  QueryParam p;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      p.found = true;
      p.value =
          eq == std::string_view::npos ? std::string() : decodeQueryComponent(pair.substr(eq + 1));
      p.begin = pos;
      p.end = amp;
      return p;
    }
    pos = amp + 1;
  }
  return p;
}

}  // namespace portico::http
