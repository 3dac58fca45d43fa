#pragma once
// An outgoing HTTP call that is not a request's upstream call (JWKS and OpenID discovery,
// introspection, health probes, log and trace exports): what Services::fetch takes and gives.
// Plain values; the client that runs them is client/http_client.
#include <chrono>
#include <string>

#include "http/header_list.h"

namespace portico::api {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path or https://...
  http::HeaderList headers;
  std::string body;
  std::chrono::milliseconds timeout{5000};  // the whole call
  std::size_t max_response_bytes = 1024 * 1024;
  std::string ca_file;  // https: trust anchors ("" = the system's)
  // https: the name sent as SNI and checked in the certificate ("" = the URL's host), for a
  // URL that names an address (health probes of a target resolved from a host name).
  std::string tls_name;
  bool tls_verify = true;  // false: the certificate is not checked (an upstream's `verify: false`)
  std::string client_cert, client_key;  // https: PEM files of a client certificate (mTLS)
};

struct HttpResponse {
  int status = 0;  // 0 when the call failed: see error
  http::HeaderList headers;
  std::string body;
  std::string error;
};

}  // namespace portico::api
