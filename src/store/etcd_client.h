#pragma once
// etcd's v3 API through its JSON gateway (ADR 0013): POST /v3/... with JSON bodies, keys and
// values base64. One keep-alive HTTP/1.1 connection on blocking sockets with timeouts, used by
// one thread at a time; a connection failure moves to the next endpoint. No Asio here: the
// store runs on the control thread, the watch on a thread of its own.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>
#include <nlohmann/json.hpp>

#include "core/result.h"

namespace portico::tls {
class ClientContext;
}

namespace portico::store {

class EtcdClient {
 public:
  // `endpoints`: "http://host:port", or "https://host:port" with `tls` (trust anchors, client
  // certificate).
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
             std::shared_ptr<const tls::ClientContext> tls = nullptr);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // One unary call: the answer's JSON, or the error of the last endpoint tried (an answer that
  // is not 200 is an error with etcd's message).
  Result<nlohmann::json> call(std::string_view path, const nlohmann::json& body);

  // A streaming call (/v3/watch): `on_message` gets each JSON message the stream carries
  // until it returns false, the stream ends or fails (the error is returned). `idle` bounds
  // the wait for each read.
  Result<bool> stream(std::string_view path, const nlohmann::json& body,
                      const std::function<bool(const nlohmann::json&)>& on_message,
                      std::chrono::milliseconds idle);

  // etcd's authentication: the client gets a token with these (/v3/auth/authenticate) before
  // its first call, and again when etcd says the token is no longer valid.
  void setCredentials(std::string username, std::string password);

  // Closes the connection (another thread may call it to end a stream).
  void shutdown();
  const std::string& endpoint() const { return endpoints_[current_]; }

 private:
  Result<nlohmann::json> callOnce(std::string_view path, const std::string& body);
  Result<bool> authenticate();
  Result<bool> connect();
  Result<bool> send(std::string_view path, const std::string& body);
  // Reads the answer's head; returns the status, fills `chunked` / `length`.
  Result<int> readHead(bool& chunked, std::size_t& length);
  Result<std::string> readBody(bool chunked, std::size_t length);
  Result<std::string> readChunk();                    // one chunk of a chunked body ("" at its end)
  Result<bool> fill();                                // more bytes into buffer_
  ssize_t write(const char* data, std::size_t size);  // through TLS when there is a session
  ssize_t read(char* data, std::size_t size);
  void close();

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  std::size_t current_ = 0;
  std::atomic<int> fd_{-1};  // atomic: shutdown() may come from another thread
  std::string buffer_;       // read but not consumed
  std::string username_, password_, token_;
  std::shared_ptr<const tls::ClientContext> tls_;
  SSL* ssl_ = nullptr;  // the connection's TLS session, with tls_
};

// Keys as etcd sees them: base64 in JSON.
std::string etcdKey(std::string_view key);
// The end of the range of every key starting with `prefix` (its last byte incremented).
std::string etcdPrefixEnd(std::string_view prefix);

}  // namespace portico::store
