#include "admin/admin_server.h"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <exception>

#include "core/address.h"
#include "core/exception_text.h"
#include "core/io_buffer.h"
#include "core/request_id.h"
#include "http/codec/head_parser.h"
#include "proxy/io_types.h"
#include "proxy/message_writer.h"
#include "proxy/tls_stream.h"
#include "tls/server_context.h"

namespace portico::admin {

using boost::asio::redirect_error;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {

// Every answer carries a request id (the client's X-Request-Id when it is a sane one, else a
// fresh one), and a JSON error names it, as the gateway's errors do.
void withRequestId(const http::RequestHead& req, AdminResponse& r) {
  const std::string* incoming = req.headers.find("x-request-id");
  const std::string id =
      incoming && isAcceptableRequestId(*incoming) ? *incoming : generateRequestId();
  r.headers.emplace_back("X-Request-Id", id);
  if (r.status < 400 || r.content_type != "application/json") return;
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (!body.is_object() || body.contains("request_id")) return;
  body["request_id"] = id;
  r.body = body.dump();
}

// A handler that throws has a bug; its client still gets an answer (the request id names it
// in the log), and the exception's text goes to the log, not to the client.
AdminResponse internalError(const AdminRequest& request, std::exception_ptr thrown) {
  spdlog::error("admin: {} {} failed: {}", request.method, request.path,
                exceptionText(std::move(thrown)));
  return {500, "application/json", R"({"error":"internal error","status":500})", {}};
}

}  // namespace

struct AdminServer::Impl {
  explicit Impl(asio::io_context& io_context) : io(io_context) {}
  asio::io_context& io;
  AdminHandler handler;
  AsyncAdminHandler async_handler;  // instead of `handler`
  std::unique_ptr<proxy::Acceptor> acceptor;
  std::shared_ptr<const tls::ServerContext> tls;  // null: plain HTTP

  proxy::Task<void> serve(proxy::Socket socket) {
    error_code ec;
    proxy::Timer deadline(io, std::chrono::seconds(10));
    deadline.async_wait([&socket](error_code e) {
      if (!e) socket.close(e);
    });
    std::unique_ptr<proxy::TlsStream> secure;
    if (tls) {
      secure = std::make_unique<proxy::TlsStream>(socket, tls->context());
      co_await secure->handshake(true, ec);
    }
    if (!ec) co_await exchange(socket, secure.get());
    deadline.cancel();
    socket.shutdown(proxy::tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  // One request and its answer (Connection: close).
  proxy::Task<void> exchange(proxy::Socket& socket, proxy::TlsStream* secure) {
    error_code ec;
    auto readSome = [&](IoBuffer& buf) -> proxy::Task<std::size_t> {
      const auto into = asio::buffer(buf.writePtr(), buf.writable());
      if (secure) co_return co_await secure->readSome(into, ec);
      co_return co_await socket.async_read_some(into, redirect_error(proxy::kUseAwaitable, ec));
    };
    IoBuffer buf(16 * 1024);
    http::HeadLimits limits;
    limits.max_header_bytes = 16 * 1024;
    http::RequestHead req;
    for (;;) {
      std::size_t n = co_await readSome(buf);
      if (ec || n == 0) co_return;
      buf.commit(n);
      auto pr = http::parseRequestHead(buf.readable(), limits, req);
      if (pr.status == http::ParseStatus::Incomplete && buf.writable() > 0) continue;
      AdminResponse r;
      AdminRequest ar;
      if (pr.status == http::ParseStatus::Complete) {
        buf.consume(pr.consumed);
        if (req.framing == http::BodyFraming::Chunked ||
            (req.framing == http::BodyFraming::ContentLength &&
             req.content_length > kMaxAdminBody)) {
          r = {413, "application/json", R"({"error":"body too large","status":413})", {}};
        } else {
          // The body: what came with the head, then the rest.
          const auto want = static_cast<std::size_t>(req.content_length);
          while (ar.body.size() < want) {
            const std::string_view have = buf.readable();
            const std::size_t take = std::min(have.size(), want - ar.body.size());
            ar.body.append(have.substr(0, take));
            buf.consume(take);
            if (ar.body.size() == want) break;
            n = co_await readSome(buf);
            if (ec || n == 0) break;
            buf.commit(n);
          }
          if (ar.body.size() != want) co_return;
          const std::string* accept = req.headers.find("accept");
          ar.method = req.method;
          ar.path = req.path;
          ar.query = req.query;
          for (const auto& h : req.headers) {
            std::string name(h.name);
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            ar.headers.emplace_back(std::move(name), std::string(h.value));
          }
          if (accept) ar.accept = *accept;
          error_code peer_ec;
          const auto peer = socket.remote_endpoint(peer_ec);
          if (!peer_ec) ar.client_ip = peer.address().to_string();
          // Not a conditional expression: GCC 12 evaluates a co_await in one wrongly.
          if (async_handler) {
            r = co_await answerLater(ar);
          } else {
            try {
              r = handler(ar);
            } catch (...) {
              r = internalError(ar, std::current_exception());
            }
          }
        }
      } else {
        r.status = 400;
        r.body = R"({"error":"bad request","status":400})";
      }
      withRequestId(req, r);
      std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                        std::string(proxy::reasonPhrase(r.status)) +
                        "\r\nContent-Type: " + r.content_type +
                        "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
      for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
      out += "Connection: close\r\n\r\n";
      if (req.method != "HEAD") out += r.body;
      if (secure)
        co_await secure->write(asio::buffer(out), ec);
      else
        co_await asio::async_write(socket, asio::buffer(out),
                                   redirect_error(proxy::kUseAwaitable, ec));
      co_return;
    }
  }

  // The async handler's reply, resumed on this loop whichever thread gave it. The first reply
  // counts: a handler that throws after replying, or replies twice, resumes the request once.
  proxy::Task<AdminResponse> answerLater(const AdminRequest& request) {
    co_return co_await asio::async_initiate<decltype(proxy::kUseAwaitable), void(AdminResponse)>(
        [this, &request](auto completion) {
          struct Pending {
            decltype(completion) resume;
            std::atomic<bool> answered{false};
          };
          auto pending = std::make_shared<Pending>(std::move(completion));
          auto reply = [this, pending](AdminResponse response) {
            if (pending->answered.exchange(true)) return;
            asio::post(io, [pending, response = std::move(response)]() mutable {
              pending->resume(std::move(response));
            });
          };
          try {
            async_handler(request, reply);
          } catch (...) {
            reply(internalError(request, std::current_exception()));
          }
        },
        proxy::kUseAwaitable);
  }

  proxy::Task<void> acceptLoop() {
    for (;;) {
      error_code ec;
      proxy::Socket s = co_await acceptor->async_accept(redirect_error(proxy::kUseAwaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(io, serve(std::move(s)), asio::detached);
    }
  }
};

AdminServer::AdminServer(asio::io_context& io, AdminHandler handler)
    : impl_(std::make_unique<Impl>(io)) {
  impl_->handler = std::move(handler);
}

AdminServer::AdminServer(asio::io_context& io, AsyncAdminHandler handler)
    : impl_(std::make_unique<Impl>(io)) {
  impl_->async_handler = std::move(handler);
}

AdminServer::~AdminServer() {
  stop();
}

Result<bool> AdminServer::listen(const std::string& address,
                                 std::shared_ptr<const tls::ServerContext> tls) {
  impl_->tls = std::move(tls);
  auto hp = parseHostPort(address);
  if (!hp) return hp.error();
  auto addrs = resolve(*hp);
  if (!addrs) return addrs.error();
  proxy::tcp::endpoint ep;
  std::memcpy(ep.data(), &addrs->front().storage, addrs->front().length);
  ep.resize(addrs->front().length);
  auto acceptor = std::make_unique<proxy::Acceptor>(impl_->io);
  error_code ec;
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(proxy::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(128, ec);
  if (ec) return makeError("cannot listen on " + address + " (admin): " + ec.message());
  impl_->acceptor = std::move(acceptor);
  asio::co_spawn(impl_->io, impl_->acceptLoop(), asio::detached);
  return true;
}

std::uint16_t AdminServer::port() const {
  if (!impl_->acceptor) return 0;
  error_code ec;
  const auto ep = impl_->acceptor->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void AdminServer::stop() {
  if (impl_->acceptor) {
    error_code ec;
    impl_->acceptor->close(ec);
  }
}

}  // namespace portico::admin
