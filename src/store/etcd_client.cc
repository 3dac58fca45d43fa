#include "store/etcd_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include "core/base64.h"
#include "core/json_field.h"

#include "tls/client_context.h"

namespace portico::store {
namespace {

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMaxBody = 512 * 1024 * 1024;  // a whole range of a large config

// "http://host:port" or "https://host:port" -> host, port.
bool splitEndpoint(const std::string& endpoint, std::string& host, std::string& port) {
  std::string_view rest = endpoint;
  if (rest.rfind("http://", 0) == 0)
    rest.remove_prefix(7);
  else if (rest.rfind("https://", 0) == 0)
    rest.remove_prefix(8);
  else
    return false;
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  host = std::string(rest.substr(0, colon));
  port = std::string(rest.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return !port.empty();
}

}  // namespace

std::string etcdKey(std::string_view key) {
  return base64Encode(key);
}

std::string etcdPrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xFF) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(end.back() + 1);
  return end;
}

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
                       std::shared_ptr<const tls::ClientContext> tls)
    : endpoints_(std::move(endpoints)), timeout_(timeout), tls_(std::move(tls)) {
  if (endpoints_.empty()) endpoints_.push_back("http://127.0.0.1:2379");
}

EtcdClient::~EtcdClient() {
  close();
}

void EtcdClient::close() {
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

void EtcdClient::shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

Result<bool> EtcdClient::connect() {
  if (fd_ >= 0) return true;
  std::string host, port;
  if (!splitEndpoint(endpoints_[current_], host, port))
    return makeError("etcd endpoint " + endpoints_[current_] + ": expected http://host:port");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return makeError("etcd " + endpoints_[current_] + ": " + gai_strerror(rc));
  std::string error = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout_.count() / 1000),
               static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (fd_ < 0) return makeError("etcd " + endpoints_[current_] + ": " + error);
  if (!tls_) return true;
  // TLS on the blocking socket: its timeouts bound the handshake too.
  ssl_ = SSL_new(tls_->context().native_handle());
  if (!ssl_ || !tls_->prepare(ssl_, host) || SSL_set_fd(ssl_, fd_) != 1 || SSL_connect(ssl_) != 1) {
    const unsigned long code = ERR_get_error();
    char reason[256] = "handshake failed";
    if (code) ERR_error_string_n(code, reason, sizeof reason);
    close();
    return makeError("etcd " + endpoints_[current_] + ": TLS: " + reason);
  }
  return true;
}

ssize_t EtcdClient::write(const char* data, std::size_t size) {
  if (!ssl_) return ::send(fd_, data, size, MSG_NOSIGNAL);
  const int n = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
  return n > 0 ? n : -1;
}

ssize_t EtcdClient::read(char* data, std::size_t size) {
  if (!ssl_) return ::recv(fd_, data, size, 0);
  const int n = SSL_read(ssl_, data, static_cast<int>(size));
  if (n > 0) return n;
  return SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

Result<bool> EtcdClient::send(std::string_view path, const std::string& body) {
  std::string host, port;
  splitEndpoint(endpoints_[current_], host, port);
  std::string out =
      "POST " + std::string(path) + " HTTP/1.1\r\nHost: " + host + ":" + port +
      (token_.empty() ? std::string() : "\r\nAuthorization: " + token_) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  for (std::size_t sent = 0; sent < out.size();) {
    const ssize_t n = write(out.data() + sent, out.size() - sent);
    if (n <= 0)
      return makeError("etcd " + endpoints_[current_] + ": send: " + std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

Result<bool> EtcdClient::fill() {
  char chunk[16384];
  const ssize_t n = read(chunk, sizeof chunk);
  if (n > 0) {
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  if (n == 0) return makeError("etcd " + endpoints_[current_] + ": connection closed");
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return makeError("etcd " + endpoints_[current_] + ": no answer in time");
  return makeError("etcd " + endpoints_[current_] + ": " + std::strerror(errno));
}

Result<int> EtcdClient::readHead(bool& chunked, std::size_t& length) {
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > kMaxHead) return makeError("etcd: answer head too large");
    if (auto ok = fill(); !ok) return ok.error();
  }
  const std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) return makeError("etcd: not HTTP");
  const int status = std::atoi(head.c_str() + 9);
  chunked = false;
  length = 0;
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos) {
    const std::size_t next = head.find("\r\n", at + 2);
    std::string line =
        head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
    for (auto& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (line.rfind("content-length:", 0) == 0)
      length = std::strtoull(line.c_str() + 15, nullptr, 10);
    if (line.rfind("transfer-encoding:", 0) == 0 && line.find("chunked") != std::string::npos)
      chunked = true;
    at = next;
  }
  if (length > kMaxBody) return makeError("etcd: answer too large");
  return status;
}

Result<std::string> EtcdClient::readChunk() {
  std::size_t eol;
  while ((eol = buffer_.find("\r\n")) == std::string::npos) {
    if (buffer_.size() > kMaxHead) return makeError("etcd: bad chunk");
    if (auto ok = fill(); !ok) return ok.error();
  }
  const std::size_t size = std::strtoull(buffer_.c_str(), nullptr, 16);
  if (size > kMaxBody) return makeError("etcd: chunk too large");
  buffer_.erase(0, eol + 2);
  while (buffer_.size() < size + 2)
    if (auto ok = fill(); !ok) return ok.error();
  std::string data = buffer_.substr(0, size);
  buffer_.erase(0, size + 2);
  return data;
}

Result<std::string> EtcdClient::readBody(bool chunked, std::size_t length) {
  if (!chunked) {
    while (buffer_.size() < length)
      if (auto ok = fill(); !ok) return ok.error();
    std::string body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return body;
  }
  std::string body;
  for (;;) {
    auto chunk = readChunk();
    if (!chunk) return chunk.error();
    if (chunk->empty()) break;
    if (body.size() + chunk->size() > kMaxBody) return makeError("etcd: answer too large");
    body += *chunk;
  }
  // (no trailers from etcd's gateway: the empty line after the last chunk was consumed)
  return body;
}

void EtcdClient::setCredentials(std::string username, std::string password) {
  username_ = std::move(username);
  password_ = std::move(password);
  token_.clear();
}

Result<bool> EtcdClient::authenticate() {
  token_.clear();
  auto answer = callOnce("/v3/auth/authenticate",
                         nlohmann::json{{"name", username_}, {"password", password_}}.dump());
  if (!answer) return makeError(answer.error().message + " (authenticating as " + username_ + ")");
  token_ = stringField(*answer, "token");
  if (token_.empty()) return makeError("etcd: no token for " + username_);
  return true;
}

Result<nlohmann::json> EtcdClient::call(std::string_view path, const nlohmann::json& body) {
  const std::string text = body.dump();
  if (!username_.empty() && token_.empty())
    if (auto ok = authenticate(); !ok) return ok.error();
  auto answer = callOnce(path, text);
  // A token etcd no longer honours (expired, or etcd restarted): once more with a new one.
  if (!answer && !username_.empty() && answer.error().message.rfind("etcd: 401", 0) == 0) {
    if (auto ok = authenticate(); !ok) return ok.error();
    answer = callOnce(path, text);
  }
  return answer;
}

Result<nlohmann::json> EtcdClient::callOnce(std::string_view path, const std::string& text) {
  std::string error;
  // Each endpoint once, starting with the current one; a kept connection that went stale is
  // retried once on the same endpoint.
  for (std::size_t tried = 0; tried <= endpoints_.size(); ++tried) {
    const bool reused = fd_ >= 0;
    bool answered = false;  // etcd itself refused: another endpoint would say the same
    auto answer = [&]() -> Result<nlohmann::json> {
      if (auto ok = connect(); !ok) return ok.error();
      if (auto ok = send(path, text); !ok) return ok.error();
      bool chunked;
      std::size_t length;
      auto status = readHead(chunked, length);
      if (!status) return status.error();
      auto got = readBody(chunked, length);
      if (!got) return got.error();
      auto json = nlohmann::json::parse(*got, nullptr, false);
      if (json.is_discarded()) return makeError("etcd: an answer that is not JSON");
      if (*status == 200) return json;
      answered = *status < 500;
      std::string why = stringField(json, "message");
      if (why.empty()) why = stringField(json, "error");
      return makeError("etcd: " + std::to_string(*status) + " " + why);
    }();
    if (answer || answered) return answer;
    error = answer.error().message;
    close();
    if (!(reused && tried == 0)) current_ = (current_ + 1) % endpoints_.size();
  }
  return makeError(error);
}

Result<bool> EtcdClient::stream(std::string_view path, const nlohmann::json& body,
                                const std::function<bool(const nlohmann::json&)>& on_message,
                                std::chrono::milliseconds idle) {
  if (!username_.empty())  // a fresh token for each stream: a watch lives long
    if (auto ok = authenticate(); !ok) return ok.error();
  close();
  if (auto ok = connect(); !ok) {
    current_ = (current_ + 1) % endpoints_.size();
    return ok.error();
  }
  timeval tv{static_cast<time_t>(idle.count() / 1000),
             static_cast<suseconds_t>((idle.count() % 1000) * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const auto fail = [&](const Error& e) -> Result<bool> {
    close();
    current_ = (current_ + 1) % endpoints_.size();
    return e;
  };
  if (auto ok = send(path, body.dump()); !ok) return fail(ok.error());
  bool chunked;
  std::size_t length;
  auto status = readHead(chunked, length);
  if (!status) return fail(status.error());
  if (*status != 200 || !chunked)
    return fail(Error{"etcd: watch answered " + std::to_string(*status)});
  // The gateway writes one JSON message per line; a message may span chunks.
  std::string pending;
  for (;;) {
    auto chunk = readChunk();
    if (!chunk) return fail(chunk.error());
    if (chunk->empty()) break;
    pending += *chunk;
    if (pending.size() > kMaxBody) return fail(Error{"etcd: watch message too large"});
    std::size_t eol;
    while ((eol = pending.find('\n')) != std::string::npos) {
      const auto message = nlohmann::json::parse(pending.substr(0, eol), nullptr, false);
      pending.erase(0, eol + 1);
      if (message.is_discarded()) continue;
      if (!on_message(message)) {
        close();
        return true;
      }
    }
  }
  close();
  return true;
}

}  // namespace portico::store
