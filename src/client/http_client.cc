#include "client/http_client.h"

#include "core/run_loop.h"
#include "http/url.h"

#include <sys/stat.h>

#include <array>
#include <charconv>
#include <map>
#include <optional>
#include <thread>

#include <utility>  // boost/asio/awaitable.hpp uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/codec/chunked_decoder.h"
#include "http/codec/head_parser.h"

namespace portico::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query
};

bool parseUrl(const std::string& url, Url& out) {
  auto u = http::parseAbsoluteUrl(url);
  if (!u) return false;
  out.tls = u->https;
  out.host = std::move(u->host);
  out.port = std::to_string(u->port);
  out.target = std::move(u->target);
  return true;
}

HttpResponse failure(std::string why) {
  HttpResponse r;
  r.error = std::move(why);
  return r;
}

// Splits what a Connection: close response sent into head and body.
HttpResponse parseResponse(const std::string& raw) {
  HttpResponse r;
  http::ResponseHead head;
  http::HeadLimits limits;
  auto pr = http::parseResponseHead(raw, limits, false, head);
  if (pr.status != http::ParseStatus::Complete) return failure("malformed response");
  r.status = head.status;
  r.headers = std::move(head.headers);
  std::string_view body = std::string_view(raw).substr(pr.consumed);
  if (head.framing == http::BodyFraming::Chunked) {
    http::ChunkedDecoder decoder;
    auto step = decoder.feed(body, [&](std::string_view d) { r.body.append(d); });
    if (step.status != http::ChunkedDecoder::Status::Done) return failure("truncated response");
  } else if (head.framing == http::BodyFraming::ContentLength) {
    if (body.size() < head.content_length) return failure("truncated response");
    r.body = std::string(body.substr(0, head.content_length));
  } else {
    r.body = std::string(body);
  }
  return r;
}

// Tells whether the bytes read so far hold a whole response, so callers stop reading there even
// when a server keeps the connection open despite `Connection: close`. Each byte is looked at
// once: the head is parsed once, and a chunked body goes through one decoder as it arrives.
class ResponseEnd {
 public:
  explicit ResponseEnd(bool head_request) : head_request_(head_request) {}

  bool complete(const std::string& raw) {
    if (!head_parsed_) {
      http::ResponseHead head;
      http::HeadLimits limits;
      auto pr = http::parseResponseHead(raw, limits, head_request_, head);
      if (pr.status != http::ParseStatus::Complete) return false;
      head_parsed_ = true;
      framing_ = head.framing;
      length_ = head.content_length;
      body_start_ = fed_ = pr.consumed;
      bodiless_ = head_request_ || head.status == 204 || head.status == 304 ||
                  (head.status >= 100 && head.status < 200);
    }
    switch (framing_) {
      case http::BodyFraming::ContentLength:
        return raw.size() - body_start_ >= length_;
      case http::BodyFraming::Chunked: {
        auto step = decoder_.feed(std::string_view(raw).substr(fed_), [](std::string_view) {});
        fed_ += step.consumed;
        return step.status == http::ChunkedDecoder::Status::Done;
      }
      default:
        return bodiless_;
    }
  }

 private:
  bool head_request_;
  bool head_parsed_ = false;
  bool bodiless_ = false;
  http::BodyFraming framing_ = http::BodyFraming::None;
  std::uint64_t length_ = 0;
  std::size_t body_start_ = 0;
  std::size_t fed_ = 0;
  http::ChunkedDecoder decoder_;
};

}  // namespace

struct HttpClient::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  // TLS client contexts by CA file ("" = the system's) and client certificate, made again
  // when one of the files changes: making one per call cost more than the rest of a plain
  // call. Used by this thread only.
  struct CachedContext {
    std::shared_ptr<asio::ssl::context> ctx;
    std::array<std::int64_t, 3> stamp{-1, -1, -1};  // modification times of the three files
  };
  std::map<std::string, CachedContext> tls_contexts;

  static std::int64_t mtimeNs(const std::string& path) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return 0;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }

  std::shared_ptr<asio::ssl::context> tlsContext(const HttpRequest& req, error_code& ec) {
    const std::array<std::int64_t, 3> stamp = {mtimeNs(req.ca_file), mtimeNs(req.client_cert),
                                               mtimeNs(req.client_key)};
    auto& cached = tls_contexts[req.ca_file + '\n' + req.client_cert + '\n' + req.client_key];
    if (cached.ctx && cached.stamp == stamp) return cached.ctx;
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    if (req.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(req.ca_file, ec);
    }
    if (!ec && !req.client_cert.empty()) {
      ctx->use_certificate_chain_file(req.client_cert, ec);
      if (!ec) ctx->use_private_key_file(req.client_key, asio::ssl::context::pem, ec);
    }
    if (ec) return nullptr;
    ctx->set_verify_mode(asio::ssl::verify_peer);
    cached = {ctx, stamp};
    return ctx;
  }

  asio::awaitable<void> call(HttpRequest req, std::function<void(HttpResponse)> done) {
    Url url;
    if (!parseUrl(req.url, url)) {
      done(failure("bad URL"));
      co_return;
    }
    tcp::socket socket(io);
    std::shared_ptr<asio::ssl::context> tls_ctx;  // outlives the stream below
    std::optional<asio::ssl::stream<tcp::socket&>> tls;
    bool timed_out = false;
    asio::steady_timer deadline(io, req.timeout);
    deadline.async_wait([&](error_code ec) {
      if (ec) return;
      timed_out = true;
      error_code ignored;
      socket.close(ignored);
    });
    auto fail = [&](const char* what, const error_code& ec) {
      deadline.cancel();
      done(failure(timed_out ? std::string("timed out") : std::string(what) + ": " + ec.message()));
    };
    error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = co_await resolver.async_resolve(url.host, url.port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail("resolve", ec);
    co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail("connect", ec);
    std::string out = req.method + " " + url.target + " HTTP/1.1\r\n";
    if (!req.headers.has("Host"))  // a caller's own Host (health probes) wins
      out += "Host: " + url.host + (url.port == (url.tls ? "443" : "80") ? "" : ":" + url.port) +
             "\r\n";
    out += "Connection: close\r\nUser-Agent: portico\r\n";
    for (const auto& h : req.headers) out += h.name + ": " + h.value + "\r\n";
    if (!req.body.empty() || req.method == "POST")
      out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
    out += "\r\n" + req.body;
    std::string raw;
    ResponseEnd end(req.method == "HEAD");
    std::array<char, 16384> buf;
    if (url.tls) {
      tls_ctx = tlsContext(req, ec);
      if (!tls_ctx) co_return fail("TLS files", ec);
      tls.emplace(socket, *tls_ctx);
      const std::string& name = req.tls_name.empty() ? url.host : req.tls_name;
      SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
      if (req.tls_verify) {
        tls->set_verify_callback(asio::ssl::host_name_verification(name));
      } else {
        tls->set_verify_mode(asio::ssl::verify_none);
      }
      co_await tls->async_handshake(asio::ssl::stream_base::client,
                                    asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return fail("TLS handshake", ec);
      co_await asio::async_write(*tls, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return fail("write", ec);
      for (;;) {
        std::size_t n = co_await tls->async_read_some(
            asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        raw.append(buf.data(), n);
        if (ec || raw.size() > req.max_response_bytes || end.complete(raw)) break;
      }
    } else {
      co_await asio::async_write(socket, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return fail("write", ec);
      for (;;) {
        std::size_t n = co_await socket.async_read_some(
            asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        raw.append(buf.data(), n);
        if (ec || raw.size() > req.max_response_bytes || end.complete(raw)) break;
      }
    }
    deadline.cancel();
    if (timed_out) co_return done(failure("timed out"));
    if (raw.size() > req.max_response_bytes) co_return done(failure("response too large"));
    done(parseResponse(raw));
  }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([this] { runLoop(impl_->io, "http client"); });
}

HttpClient::~HttpClient() {
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void HttpClient::fetch(HttpRequest request, std::function<void(HttpResponse)> done) {
  asio::co_spawn(impl_->io, impl_->call(std::move(request), std::move(done)), asio::detached);
}

}  // namespace portico::client
