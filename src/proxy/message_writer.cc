#include "proxy/message_writer.h"

#include <cstring>

#include "core/json_escape.h"

namespace portico::proxy {
namespace {

bool isAlwaysHopByHop(http::HeaderId id) {
  using http::HeaderId;
  // Content-Length is not hop-by-hop, but it is rewritten from the parsed framing.
  return id == HeaderId::Connection || id == HeaderId::KeepAlive ||
         id == HeaderId::ProxyConnection || id == HeaderId::TE || id == HeaderId::Upgrade ||
         id == HeaderId::TransferEncoding || id == HeaderId::ContentLength;
}

// Whether a Connection header names a field that is not dropped anyway. Usually it names only
// keep-alive (or upgrade, te...), and then no field needs checking against its list.
bool connectionNamesOthers(const http::HeaderList& headers) {
  bool others = false;
  for (const auto& h : headers) {
    if (h.id != http::HeaderId::Connection) continue;
    http::forEachToken(h.value, [&](std::string_view token) {
      others = others || !isAlwaysHopByHop(http::classifyHeader(token));
    });
  }
  return others;
}

// Whether this field must be dropped: always-hop-by-hop, or named by a Connection header
// (`named_by_connection`: connectionNamesOthers() of the message).
bool dropped(const http::Header& h, const http::HeaderList& headers, bool named_by_connection) {
  if (isAlwaysHopByHop(h.id)) return true;
  return named_by_connection && isHopByHop(h.name, headers);
}

// Appends the parts with one growth of `out`: an append each would check the capacity and
// call memcpy for every piece (the literals' copies are inlined here). No part may point into
// `out` (the growth may move it).
template <class... Parts>
void appendAll(std::string& out, const Parts&... parts) {
  const std::size_t at = out.size();
  out.resize(at + (std::string_view(parts).size() + ...));
  char* p = out.data() + at;
  const auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  (put(std::string_view(parts)), ...);
}

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  appendAll(out, name, ": ", value, "\r\n");
}

// A list-valued header with our element appended to what the previous hop sent.
void appendListHeader(std::string& out, std::string_view name, const std::string* previous,
                      std::string_view ours) {
  if (previous) {
    appendAll(out, name, ": ", *previous, ", ", ours, "\r\n");
  } else {
    appendAll(out, name, ": ", ours, "\r\n");
  }
}

std::string_view viaElement(int version_minor) {
  return version_minor == 0 ? "1.0 portico" : "1.1 portico";
}

}  // namespace

bool isHopByHop(std::string_view name, const http::HeaderList& headers) {
  if (isAlwaysHopByHop(http::classifyHeader(name))) return true;
  bool listed = false;
  for (const auto& h : headers) {
    if (h.id != http::HeaderId::Connection) continue;
    http::forEachToken(h.value, [&](std::string_view token) {
      if (http::equalsIgnoreCase(token, name)) listed = true;
    });
  }
  return listed;
}

namespace {

// The fields forwarded upstream, whatever the protocol: the client's, minus hop-by-hop ones,
// plus the forwarding ones. `sink.field(name, value, id)`, `sink.host(name, value)` and
// `sink.list(name, id, previous, ours)` receive them in order.
template <class Sink>
void forwardedFields(const http::RequestHead& req, const ForwardInfo& info, Sink& sink) {
  using http::HeaderId;
  const bool named_by_connection = connectionNamesOthers(req.headers);
  const std::string* xff = nullptr;
  const std::string* via = nullptr;
  for (const auto& h : req.headers) {
    if (dropped(h, req.headers, named_by_connection)) continue;
    switch (h.id) {
      case HeaderId::XForwardedFor:
        xff = &h.value;
        continue;
      case HeaderId::Via:
        via = &h.value;
        continue;
      case HeaderId::XForwardedProto:
      case HeaderId::XForwardedHost:
      case HeaderId::Expect:
        continue;
      case HeaderId::Host:
        sink.host(h.name, info.host.empty() ? std::string_view(h.value) : info.host);
        continue;
      default:
        sink.field(h.name, h.value, h.id);
    }
  }
  sink.list("X-Forwarded-For", HeaderId::XForwardedFor, xff, info.client_ip);
  sink.field("X-Forwarded-Proto", info.proto, HeaderId::XForwardedProto);
  if (!req.host.empty()) sink.field("X-Forwarded-Host", req.host, HeaderId::XForwardedHost);
  sink.list("Via", HeaderId::Via, via, viaElement(req.version_minor));
  if (!req.headers.has(HeaderId::XRequestId))
    sink.field("X-Request-Id", info.request_id, HeaderId::XRequestId);
}

// The fields of the upstream's response forwarded to the client: its own, minus hop-by-hop
// ones, with our element appended to Via. Same sinks as forwardedFields.
template <class Sink>
void forwardedResponseFields(const http::ResponseHead& resp, Sink& sink) {
  const bool named_by_connection = connectionNamesOthers(resp.headers);
  const std::string* via = nullptr;
  for (const auto& h : resp.headers) {
    if (dropped(h, resp.headers, named_by_connection)) continue;
    if (h.id == http::HeaderId::Via) {
      via = &h.value;
      continue;
    }
    sink.field(h.name, h.value, h.id);
  }
  sink.list("Via", http::HeaderId::Via, via, viaElement(resp.version_minor));
}

// Whether the forwarded response carries a Content-Length: the one announced upstream (also
// for HEAD responses and 304s), or 0 for an empty body where the status allows one.
bool carriesContentLength(const http::ResponseHead& resp) {
  const bool bodiless = resp.status < 200 || resp.status == 204 || resp.status == 304;
  return resp.framing == http::BodyFraming::ContentLength || resp.content_length > 0 ||
         (!bodiless && resp.framing == http::BodyFraming::None);
}

struct Http1Sink {
  std::string& out;
  void field(std::string_view name, std::string_view value, http::HeaderId) {
    appendHeader(out, name, value);
  }
  void host(std::string_view name, std::string_view value) { appendHeader(out, name, value); }
  void list(std::string_view name, http::HeaderId, const std::string* previous,
            std::string_view ours) {
    appendListHeader(out, name, previous, ours);
  }
};

struct Http2Sink {
  http::HeaderList& out;
  std::string value_buf;
  void field(std::string_view name, std::string_view value, http::HeaderId id) {
    out.addLowerCase(name, value, id);
  }
  void host(std::string_view, std::string_view) {}  // it is :authority
  void list(std::string_view name, http::HeaderId id, const std::string* previous,
            std::string_view ours) {
    value_buf = previous ? *previous + ", " : std::string();
    value_buf += ours;
    field(name, value_buf, id);
  }
};

}  // namespace

void writeUpstreamRequestHead(std::string& out, const http::RequestHead& req,
                              std::string_view target, const ForwardInfo& info) {
  appendAll(out, req.method, " ", target, " HTTP/1.1\r\n");
  Http1Sink sink{out};
  forwardedFields(req, info, sink);
  if (!req.upgrade.empty()) {  // the one hop-by-hop pair that must reach the upstream
    appendHeader(out, "Upgrade", req.upgrade);
    out.append("Connection: Upgrade\r\n");
  }
  if (req.framing == http::BodyFraming::Chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (req.framing == http::BodyFraming::ContentLength) {
    appendHeader(out, "Content-Length", std::to_string(req.content_length));
  } else if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    out.append("Content-Length: 0\r\n");
  }
  out.append("\r\n");
}

void writeUpstreamRequestFields(http::HeaderList& out, const http::RequestHead& req,
                                std::string_view target, std::string_view scheme,
                                const ForwardInfo& info) {
  out.clear();
  out.add(":method", req.method);
  out.add(":scheme", scheme);
  if (!info.host.empty()) {
    out.add(":authority", info.host);
  } else if (const std::string* host = req.headers.find(http::HeaderId::Host)) {
    out.add(":authority", *host);
  } else {
    out.add(":authority", req.host);
  }
  out.add(":path", target);
  Http2Sink sink{out, {}};
  forwardedFields(req, info, sink);
  // TE is hop-by-hop, but "trailers" must reach an HTTP/2 upstream (gRPC requires it).
  if (const std::string* te = req.headers.find(http::HeaderId::TE)) {
    bool trailers = false;
    http::forEachToken(
        *te, [&](std::string_view t) { trailers |= http::equalsIgnoreCase(t, "trailers"); });
    if (trailers) out.add("te", "trailers");
  }
  if (req.framing == http::BodyFraming::ContentLength)
    out.add("content-length", std::to_string(req.content_length));
}

void writeResponseHead(std::string& out, const http::ResponseHead& resp,
                       const ResponseFraming& framing) {
  const auto digits = http::statusDigits(resp.status);
  appendAll(out, "HTTP/1.1 ", std::string_view(digits.data(), digits.size()), " ",
            resp.reason.empty() ? reasonPhrase(resp.status) : std::string_view(resp.reason),
            "\r\n");
  Http1Sink sink{out};
  forwardedResponseFields(resp, sink);
  if (resp.status == 101) {
    if (const std::string* u = resp.headers.find(http::HeaderId::Upgrade))
      appendHeader(out, "Upgrade", *u);
    out.append("Connection: Upgrade\r\n\r\n");
    return;
  }
  if (framing.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (!framing.until_close && carriesContentLength(resp)) {
    appendHeader(out, "Content-Length", std::to_string(resp.content_length));
  }
  if (!framing.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (framing.client_version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

void writeHttp2ResponseFields(http::HeaderList& out, const http::ResponseHead& resp) {
  out.clear();
  Http2Sink sink{out, {}};
  forwardedResponseFields(resp, sink);
  if (carriesContentLength(resp))
    out.add("content-length", std::to_string(resp.content_length), http::HeaderId::ContentLength);
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace portico::proxy
