#include "server/worker.h"

#include <unistd.h>

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/run_loop.h"
#include "proxy/http_session.h"
#include "proxy/upstream_h2.h"
#include "proxy/worker_context.h"

namespace portico::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Worker::Impl {
  Impl(int id, observability::WorkerStats& stats)
      : ctx(io, id, stats), io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), sweep_timer(io) {}

  // ctx is declared first so that it outlives the loop: destroying the loop destroys the
  // suspended sessions, which unregister themselves from ctx.
  proxy::WorkerContext ctx;
  asio::io_context io;
  asio::steady_timer sweep_timer;
  std::map<std::string, std::unique_ptr<proxy::Acceptor>> acceptors;
  std::thread thread;
  bool stopped = false;

  proxy::Task<void> acceptLoop(proxy::Acceptor& acceptor, std::string address) {
    for (;;) {
      error_code ec;
      proxy::tcp::endpoint peer;
      proxy::Socket socket =
          co_await acceptor.async_accept(peer, asio::redirect_error(proxy::kUseAwaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // EMFILE and friends: back off briefly instead of spinning.
        proxy::Timer t(io.get_executor(), std::chrono::milliseconds(10));
        co_await t.async_wait(asio::redirect_error(proxy::kUseAwaitable, ec));
        continue;
      }
      const auto max = ctx.snapshot->config.server.limits.max_connections;
      if (ctx.sessionCount() >= max || ctx.draining) continue;  // closes the socket
      // The listener's TLS context from the snapshot current now: a replaced certificate is
      // used by new connections while established ones keep theirs.
      const snapshot::Listener* listener = ctx.snapshot->findListener(address);
      proxy::startHttpSession(ctx, std::move(socket), peer, listener);
    }
  }

  void sweep() {
    auto now = ctx.time.coarseSteady();
    ctx.wall_offset = ctx.time.system().time_since_epoch() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          ctx.time.steady().time_since_epoch());
    ctx.forEachSession([&](proxy::SessionBase& s) { s.checkDeadline(now); });
    ctx.pool.sweep(now);
    if (ctx.h2_pool) ctx.h2_pool->sweep(now);
    sweep_timer.expires_after(std::chrono::milliseconds(25));
    sweep_timer.async_wait([this](error_code ec) {
      if (!ec) sweep();
    });
  }

  void install(std::shared_ptr<const snapshot::Snapshot> snapshot,
               std::map<std::string, int> listeners) {
    ctx.installSnapshot(std::move(snapshot));
    for (auto it = acceptors.begin(); it != acceptors.end();) {
      if (!listeners.count(it->first)) {
        error_code ec;
        it->second->close(ec);
        it = acceptors.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [address, fd] : listeners) {
      if (acceptors.count(address)) continue;
      auto acceptor = std::make_unique<proxy::Acceptor>(io);
      error_code ec;
      int domain = 0;
      socklen_t len = sizeof domain;
      ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
      acceptor->assign(domain == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
      if (ec) {
        ::close(fd);
        continue;
      }
      auto* raw = acceptor.get();
      acceptors[address] = std::move(acceptor);
      asio::co_spawn(io.get_executor(), acceptLoop(*raw, address), asio::detached);
    }
  }

  void drain() {
    ctx.draining = true;
    for (auto& [_, a] : acceptors) {
      error_code ec;
      a->close(ec);
    }
    acceptors.clear();
    ctx.forEachSession([](proxy::SessionBase& s) { s.onDrain(); });
    ctx.pool.clear();
  }
};

Worker::Worker(int id, observability::WorkerStats& stats)
    : impl_(std::make_unique<Impl>(id, stats)) {}

Worker::~Worker() {
  stop();
}

void Worker::start() {
  impl_->thread = std::thread([this] {
    impl_->sweep();
    auto guard = asio::make_work_guard(impl_->io);
    runLoop(impl_->io, "worker " + std::to_string(impl_->ctx.id));
    impl_->ctx.stopClients();
  });
}

void Worker::install(std::shared_ptr<const snapshot::Snapshot> snapshot,
                     std::map<std::string, int> listeners, std::function<void()> installed) {
  asio::post(impl_->io, [this, s = std::move(snapshot), l = std::move(listeners),
                         done = std::move(installed)]() mutable {
    impl_->install(std::move(s), std::move(l));
    if (done) done();
  });
}

void Worker::installCandidate(std::shared_ptr<const snapshot::Snapshot> candidate, int percent,
                              std::function<void()> installed) {
  asio::post(impl_->io,
             [this, c = std::move(candidate), percent, done = std::move(installed)]() mutable {
               impl_->ctx.installCandidate(std::move(c), static_cast<std::uint32_t>(percent));
               if (done) done();
             });
}

void Worker::drain() {
  asio::post(impl_->io, [this] { impl_->drain(); });
}

void Worker::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->acceptors.clear();
  impl_->ctx.pool.clear();  // pooled sockets must close before the loop goes away
  if (impl_->ctx.h2_pool) impl_->ctx.h2_pool->closeAll();
}

}  // namespace portico::server
