#pragma once
// A small HTTP/1.1 client for the control plane of filters (JWKS and OpenID discovery, token
// introspection, external auth): its own thread and event loop, http and https, one connection
// per call (Connection: close), bounded in time and size. Callbacks run on the client's thread.
// No Asio in this header.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "http/header_list.h"

namespace portico::client {

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

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();  // stops the thread; pending calls are dropped
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void fetch(HttpRequest request, std::function<void(HttpResponse)> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::client
