#pragma once
// A small HTTP/1.1 client for the control plane of filters (JWKS and OpenID discovery, token
// introspection, external auth): its own thread and event loop, http and https, one connection
// per call (Connection: close), bounded in time and size. Callbacks run on the client's thread.
// No Asio in this header.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "api/http_fetch.h"

namespace portico::client {

// The request and answer types are part of the filter contract (api/http_fetch.h).
using HttpRequest = api::HttpRequest;
using HttpResponse = api::HttpResponse;

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
