#include "http/codec/head_parser.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "http/token.h"
#include "http/url.h"

namespace portico::http {
namespace {

// field-value characters: VCHAR, SP, HTAB and obs-text; no other control characters.
inline bool isFieldChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}
// Whether all of `v` are field-value characters: eight bytes at a time, the bytes of a word
// that may hold a control character (or DEL) checked one by one (HTAB is one of those).
bool allFieldChars(std::string_view v) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const char* p = v.data();
  const std::size_t n = v.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, p + i, 8);
    const std::uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;  // some byte < 0x20
    const std::uint64_t d = x ^ (kOnes * 0x7f);
    const std::uint64_t del = (d - kOnes) & ~d & kHigh;  // some byte == 0x7f
    if ((below_space | del) == 0) continue;
    for (std::size_t j = i; j < i + 8; ++j) {
      if (!isFieldChar(p[j])) return false;
    }
  }
  for (; i < n; ++i) {
    if (!isFieldChar(p[i])) return false;
  }
  return true;
}
// request-target characters: visible US-ASCII only.
inline bool isTargetChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

ParseResult fail(int status, const char* reason) {
  ParseResult r;
  r.status = ParseStatus::Error;
  r.error_status = status;
  r.error = reason;
  return r;
}

ParseResult incomplete() {
  return ParseResult{};
}

struct LineReader {
  std::string_view data;
  size_t pos = 0;
  // Sets `line` to the next line without its CRLF. Returns 0 = need more, 1 = line, -1 = bare LF.
  int next(std::string_view& line) {
    auto nl = data.find('\n', pos);
    if (nl == std::string_view::npos) return 0;
    if (nl == pos || data[nl - 1] != '\r') return -1;
    line = data.substr(pos, nl - 1 - pos);
    pos = nl + 1;
    return 1;
  }
};

bool parseContentLength(std::string_view v, std::uint64_t& out) {
  if (v.empty() || v.size() > 18) return false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
  }
  std::from_chars(v.data(), v.data() + v.size(), out);
  return true;
}

// Parses header lines until the empty line. Fills `headers`; returns Complete with `consumed`.
ParseResult parseFields(LineReader& reader, const HeadLimits& limits, HeaderList& headers,
                        int too_large_status) {
  for (;;) {
    if (reader.pos > limits.max_header_bytes) return fail(too_large_status, "header too large");
    std::string_view line;
    int got = reader.next(line);
    if (got == 0) {
      if (reader.data.size() > limits.max_header_bytes)
        return fail(too_large_status, "header too large");
      return incomplete();
    }
    if (got < 0) return fail(400, "bare LF in header");
    if (reader.pos > limits.max_header_bytes) return fail(too_large_status, "header too large");
    if (line.empty()) {
      ParseResult r;
      r.status = ParseStatus::Complete;
      r.consumed = reader.pos;
      return r;
    }
    if (line[0] == ' ' || line[0] == '\t') return fail(400, "obsolete line folding");
    size_t colon = 0;
    while (colon < line.size() && isTokenChar(line[colon])) ++colon;
    if (colon == 0 || colon == line.size() || line[colon] != ':')
      return fail(400, "invalid header name");
    std::string_view value = line.substr(colon + 1);
    if (!allFieldChars(value)) return fail(400, "invalid character in header value");
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (headers.size() >= limits.max_headers) return fail(too_large_status, "too many headers");
    headers.add(line.substr(0, colon), value);
  }
}

struct Framing {
  bool chunked = false;
  bool has_te = false;
  bool te_ok = true;  // the codings end in chunked, chunked appears once
  bool has_cl = false;
  bool cl_conflict = false;
  bool cl_invalid = false;
  std::uint64_t cl = 0;
  bool close = false;
  bool keep_alive_token = false;
  bool upgrade_token = false;
};

Framing inspectFraming(const HeaderList& headers) {
  Framing f;
  for (const auto& h : headers) {
    if (h.id == HeaderId::TransferEncoding) {
      f.has_te = true;
      forEachToken(h.value, [&](std::string_view coding) {
        if (f.chunked) f.te_ok = false;  // something after chunked
        if (equalsIgnoreCase(coding, "chunked")) {
          f.chunked = true;
        } else {
          f.te_ok = false;  // we decode no other transfer coding
        }
      });
      if (h.value.empty()) f.te_ok = false;
    } else if (h.id == HeaderId::ContentLength) {
      // Identical repeated values (also as a list) are one value; any difference is a conflict.
      forEachToken(h.value, [&](std::string_view v) {
        std::uint64_t n = 0;
        if (!parseContentLength(v, n)) {
          f.cl_invalid = true;
        } else if (f.has_cl && n != f.cl) {
          f.cl_conflict = true;
        } else {
          f.cl = n;
          f.has_cl = true;
        }
      });
      if (h.value.empty()) f.cl_invalid = true;
    } else if (h.id == HeaderId::Connection) {
      forEachToken(h.value, [&](std::string_view t) {
        if (equalsIgnoreCase(t, "close")) f.close = true;
        if (equalsIgnoreCase(t, "keep-alive")) f.keep_alive_token = true;
        if (equalsIgnoreCase(t, "upgrade")) f.upgrade_token = true;
      });
    }
  }
  return f;
}

}  // namespace

ParseResult parseRequestHead(std::string_view data, const HeadLimits& limits, RequestHead& out) {
  out.clear();
  // RFC 9112 2.2: ignore at least one empty line before the request line.
  size_t skip = 0;
  while (skip < 8 && data.substr(skip, 2) == "\r\n") skip += 2;
  LineReader reader{data, skip};
  std::string_view line;
  int got = reader.next(line);
  if (got == 0) {
    if (data.size() > limits.max_uri_bytes + 64) {
      // Long first line: a huge target is 414, anything else is a too-large head.
      auto sp = data.find(' ', skip);
      if (sp != std::string_view::npos && data.find(' ', sp + 1) == std::string_view::npos)
        return fail(414, "URI too long");
    }
    if (data.size() > limits.max_header_bytes) return fail(431, "header too large");
    return incomplete();
  }
  if (got < 0) return fail(400, "bare LF in request line");

  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  for (char c : method) {
    if (!isMethodChar(c))
      return fail(400, isTokenChar(c) ? "lower-case letters in method" : "invalid method");
  }
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "malformed request line");
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.size() > limits.max_uri_bytes) return fail(414, "URI too long");
  if (target.empty()) return fail(400, "malformed request line");
  for (char c : target) {
    if (!isTargetChar(c)) return fail(400, "invalid character in request target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version");
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
    return fail(505, "HTTP version not supported");

  out.method.assign(method);
  out.version_minor = version[7] - '0';
  std::string absolute_host;
  if (target[0] == '/') {
    out.target.assign(target);
  } else if (target == "*") {
    if (method != "OPTIONS") return fail(400, "asterisk-form is only for OPTIONS");
    out.target = "*";
  } else {
    // absolute-form: scheme://authority/path
    auto scheme_end = target.find("://");
    if (method == "CONNECT") return fail(501, "CONNECT is not supported");
    if (scheme_end == std::string_view::npos) return fail(400, "invalid request target");
    std::string scheme(target.substr(0, scheme_end));
    toLower(scheme);
    if (scheme != "http" && scheme != "https") return fail(400, "invalid request target");
    auto rest = target.substr(scheme_end + 3);
    auto slash = rest.find_first_of("/?");
    absolute_host.assign(rest.substr(0, slash));
    if (absolute_host.empty() || absolute_host.find('@') != std::string::npos)
      return fail(400, "invalid request target");
    if (slash == std::string_view::npos) {
      out.target = "/";
    } else {
      out.target.assign(rest.substr(slash));
      if (out.target[0] == '?') out.target.insert(0, "/");
    }
  }
  const auto q = out.target.find('?');
  out.path.assign(out.target, 0, q);  // assign: the strings keep their capacity
  if (q != std::string::npos) out.query.assign(out.target, q + 1);
  if (out.path.find('#') != std::string::npos) return fail(400, "fragment in request target");
  if (out.path != "*") {
    const PathNormalization n = normalizePath(out.path);
    if (n == PathNormalization::Changed)  // the target carries the normalised path
      out.target = q == std::string::npos ? out.path : out.path + "?" + out.query;
    else if (n != PathNormalization::Unchanged)
      return fail(400, refusalOf(n));
  }

  ParseResult r = parseFields(reader, limits, out.headers, 431);
  if (r.status != ParseStatus::Complete) return r;

  Framing f = inspectFraming(out.headers);
  if (f.has_te && f.has_cl) return fail(400, "both Content-Length and Transfer-Encoding");
  if (f.cl_invalid) return fail(400, "invalid Content-Length");
  if (f.cl_conflict) return fail(400, "conflicting Content-Length values");
  if (f.has_te) {
    if (out.version_minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!f.te_ok || !f.chunked) return fail(400, "unsupported transfer coding");
    out.framing = BodyFraming::Chunked;
  } else if (f.has_cl && f.cl > 0) {
    out.framing = BodyFraming::ContentLength;
    out.content_length = f.cl;
  }
  out.keep_alive = out.version_minor == 1 ? !f.close : (f.keep_alive_token && !f.close);
  if (f.upgrade_token && out.version_minor == 1) {
    if (const std::string* u = out.headers.find(HeaderId::Upgrade)) out.upgrade = *u;
  }

  size_t hosts = out.headers.count(HeaderId::Host);
  if (hosts > 1) return fail(400, "more than one Host header");
  if (hosts == 0 && out.version_minor == 1 && absolute_host.empty())
    return fail(400, "missing Host header");
  if (!absolute_host.empty()) {
    out.host = absolute_host;
    out.headers.set("Host", absolute_host);
  } else if (const std::string* h = out.headers.find(HeaderId::Host)) {
    out.host = *h;
  }
  for (char c : out.host) {
    if (!isTargetChar(c) || c == '/' || c == '@') return fail(400, "invalid Host header");
  }
  toLower(out.host);
  if (const std::string* e = out.headers.find(HeaderId::Expect)) {
    if (equalsIgnoreCase(*e, "100-continue")) {
      out.expect_continue = out.version_minor == 1;
    } else {
      return fail(417, "unsupported expectation");
    }
  }
  return r;
}

ParseResult parseResponseHead(std::string_view data, const HeadLimits& limits,
                              bool request_method_head, ResponseHead& out) {
  out.clear();
  LineReader reader{data, 0};
  std::string_view line;
  int got = reader.next(line);
  if (got == 0) {
    if (data.size() > limits.max_header_bytes) return fail(502, "upstream header too large");
    return incomplete();
  }
  if (got < 0) return fail(502, "malformed upstream status line");
  // HTTP/1.x SP 3DIGIT SP reason
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
    return fail(502, "malformed upstream status line");
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail(502, "malformed upstream status line");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return fail(502, "malformed upstream status line");
  out.status = status;
  out.version_minor = line[7] - '0';
  if (line.size() > 13) out.reason.assign(line.substr(13));
  for (char c : out.reason) {
    if (!isFieldChar(c)) return fail(502, "malformed upstream status line");
  }

  ParseResult r = parseFields(reader, limits, out.headers, 502);
  if (r.status != ParseStatus::Complete) {
    if (r.status == ParseStatus::Error) r.error_status = 502;
    return r;
  }
  Framing f = inspectFraming(out.headers);
  out.keep_alive = out.version_minor == 1 ? !f.close : (f.keep_alive_token && !f.close);
  if (request_method_head || status < 200 || status == 204 || status == 304) {
    out.framing = BodyFraming::None;
    if (f.has_cl && !f.cl_conflict && !f.cl_invalid) out.content_length = f.cl;
    return r;
  }
  if (f.has_te && f.has_cl) return fail(502, "upstream sent Content-Length and Transfer-Encoding");
  if (f.cl_invalid || f.cl_conflict) return fail(502, "upstream sent an invalid Content-Length");
  if (f.has_te) {
    if (f.chunked && f.te_ok) {
      out.framing = BodyFraming::Chunked;
    } else {
      out.framing = BodyFraming::UntilClose;
      out.keep_alive = false;
    }
  } else if (f.has_cl) {
    out.framing = f.cl > 0 ? BodyFraming::ContentLength : BodyFraming::None;
    out.content_length = f.cl;
  } else {
    out.framing = BodyFraming::UntilClose;
    out.keep_alive = false;
  }
  return r;
}

}  // namespace portico::http
