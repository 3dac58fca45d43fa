#pragma once
// Serialisation of the heads Portico sends: the request to the upstream and the response to
// the client. Hop-by-hop headers (RFC 9110 7.6.1: Connection and the fields it names,
// Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade) are dropped; framing headers are
// written from the parsed framing, so both hops see exactly one message length.
#include <string>
#include <string_view>

#include "http/codec/message_head.h"
#include "http/header_list.h"

namespace portico::proxy {

// Whether `name` must not be forwarded, given the message's Connection header values.
bool isHopByHop(std::string_view name, const http::HeaderList& headers);

struct ForwardInfo {
  std::string_view client_ip;
  std::string_view proto = "http";
  std::string_view request_id;
  std::string_view host;  // when set, replaces the client's Host (X-Forwarded-Host keeps it)
};

// Appends the upstream request head for `req`, sent to `target` (path and query, rewritten).
void writeUpstreamRequestHead(std::string& out, const http::RequestHead& req,
                              std::string_view target, const ForwardInfo& info);

// The same request as HTTP/2 fields for an HTTP/2 upstream: pseudo-fields first (:authority
// from Host, or info.host when set), names lower-case, no connection-specific fields.
void writeUpstreamRequestFields(http::HeaderList& out, const http::RequestHead& req,
                                std::string_view target, std::string_view scheme,
                                const ForwardInfo& info);

struct ResponseFraming {
  bool keep_alive = true;        // tell the client the connection stays open
  bool chunked = false;          // body sent with Transfer-Encoding: chunked
  bool until_close = false;      // body delimited by closing the connection
  int client_version_minor = 1;  // HTTP/1.0 clients get "Connection: keep-alive" explicitly
};

void writeResponseHead(std::string& out, const http::ResponseHead& resp,
                       const ResponseFraming& framing);

// The same response as HTTP/2 fields (names lower-case, no connection-specific ones; the
// status travels as :status, added by the codec).
void writeHttp2ResponseFields(http::HeaderList& out, const http::ResponseHead& resp);

std::string_view reasonPhrase(int status);

}  // namespace portico::proxy
