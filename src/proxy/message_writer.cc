#include "proxy/message_writer.h"

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

// Whether this field must be dropped: always-hop-by-hop, or named by a Connection header.
bool dropped(const http::Header& h, const http::HeaderList& headers, bool has_connection) {
  if (isAlwaysHopByHop(h.id)) return true;
  return has_connection && isHopByHop(h.name, headers);
}

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// A list-valued header with our element appended to what the previous hop sent.
void appendListHeader(std::string& out, std::string_view name, const std::string* previous,
                      std::string_view ours) {
  out.append(name);
  out.append(": ");
  if (previous) {
    out.append(*previous);
    out.append(", ");
  }
  out.append(ours);
  out.append("\r\n");
}

std::string_view viaElement(int version_minor) {
  return version_minor == 0 ? "1.0 portico" : "1.1 portico";
}

// Writes the three digits of a status code (100..999).
void appendStatus(std::string& out, int status) {
  out += static_cast<char>('0' + status / 100 % 10);
  out += static_cast<char>('0' + status / 10 % 10);
  out += static_cast<char>('0' + status % 10);
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
// plus the forwarding ones. `sink.field(name, value, id)` and `sink.list(name, previous, ours)`
// receive them in order.
template <class Sink>
void forwardedFields(const http::RequestHead& req, const ForwardInfo& info, Sink& sink) {
  using http::HeaderId;
  const bool has_connection = req.headers.has(HeaderId::Connection);
  const std::string* xff = nullptr;
  const std::string* via = nullptr;
  for (const auto& h : req.headers) {
    if (dropped(h, req.headers, has_connection)) continue;
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
        sink.field(h.name, info.host.empty() ? std::string_view(h.value) : info.host, h.id);
        continue;
      default:
        sink.field(h.name, h.value, h.id);
    }
  }
  sink.list("X-Forwarded-For", xff, info.client_ip);
  sink.field("X-Forwarded-Proto", info.proto, HeaderId::XForwardedProto);
  if (!req.host.empty()) sink.field("X-Forwarded-Host", req.host, HeaderId::XForwardedHost);
  sink.list("Via", via, viaElement(req.version_minor));
  if (!req.headers.has(HeaderId::XRequestId))
    sink.field("X-Request-Id", info.request_id, HeaderId::XRequestId);
}

struct Http1Sink {
  std::string& out;
  void field(std::string_view name, std::string_view value, http::HeaderId) {
    appendHeader(out, name, value);
  }
  void list(std::string_view name, const std::string* previous, std::string_view ours) {
    appendListHeader(out, name, previous, ours);
  }
};

struct Http2Sink {
  http::HeaderList& out;
  std::string name_buf;
  std::string value_buf;
  void field(std::string_view name, std::string_view value, http::HeaderId id) {
    if (id == http::HeaderId::Host) return;  // it is :authority
    name_buf = name;
    http::toLower(name_buf);
    out.add(name_buf, value);
  }
  void list(std::string_view name, const std::string* previous, std::string_view ours) {
    value_buf = previous ? *previous + ", " : std::string();
    value_buf += ours;
    field(name, value_buf, http::HeaderId::Other);
  }
};

}  // namespace

void writeUpstreamRequestHead(std::string& out, const http::RequestHead& req,
                              std::string_view target, const ForwardInfo& info) {
  out.append(req.method);
  out += ' ';
  out.append(target);
  out.append(" HTTP/1.1\r\n");
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
  Http2Sink sink{out, {}, {}};
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
  out.append("HTTP/1.1 ");
  appendStatus(out, resp.status);
  out += ' ';
  if (resp.reason.empty()) {
    out.append(reasonPhrase(resp.status));
  } else {
    out.append(resp.reason);
  }
  out.append("\r\n");
  const bool has_connection = resp.headers.has(http::HeaderId::Connection);
  const std::string* via = nullptr;
  for (const auto& h : resp.headers) {
    if (dropped(h, resp.headers, has_connection)) continue;
    if (h.id == http::HeaderId::Via) {
      via = &h.value;
      continue;
    }
    appendHeader(out, h.name, h.value);
  }
  appendListHeader(out, "Via", via, viaElement(resp.version_minor));
  if (resp.status == 101) {
    if (const std::string* u = resp.headers.find(http::HeaderId::Upgrade))
      appendHeader(out, "Upgrade", *u);
    out.append("Connection: Upgrade\r\n\r\n");
    return;
  }
  const bool bodiless = resp.status < 200 || resp.status == 204 || resp.status == 304;
  if (framing.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (!framing.until_close &&
             (resp.framing == http::BodyFraming::ContentLength || resp.content_length > 0 ||
              (!bodiless && resp.framing == http::BodyFraming::None))) {
    // Content-Length also for HEAD responses and 304s that announced one upstream.
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
  const bool has_connection = resp.headers.has(http::HeaderId::Connection);
  const std::string* via = nullptr;
  std::string name;
  for (const auto& h : resp.headers) {
    if (dropped(h, resp.headers, has_connection)) continue;
    if (h.id == http::HeaderId::Via) {
      via = &h.value;
      continue;
    }
    name = h.name;
    http::toLower(name);
    out.add(name, h.value);
  }
  std::string via_value = via ? *via + ", " : std::string();
  via_value += viaElement(resp.version_minor);
  out.add("via", via_value);
  const bool bodiless = resp.status < 200 || resp.status == 204 || resp.status == 304;
  if (resp.framing == http::BodyFraming::ContentLength || resp.content_length > 0 ||
      (!bodiless && resp.framing == http::BodyFraming::None))
    out.add("content-length", std::to_string(resp.content_length));
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
