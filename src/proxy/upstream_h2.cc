#include "proxy/upstream_h2.h"

#include <nghttp2/nghttp2.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace portico::proxy {

using boost::system::error_code;

UpstreamH2Connection::UpstreamH2Connection(WorkerContext& w,
                                           std::unique_ptr<UpstreamConnection> conn)
    : codec(*this, http2::ClientLimits{}),
      w_(w),
      conn_(std::move(conn)),
      write_wake_(w.io.get_executor()),
      idle_since_(w.time.coarseSteady()) {}

UpstreamH2Connection::~UpstreamH2Connection() = default;

void UpstreamH2Connection::start(const std::shared_ptr<UpstreamH2Connection>& self) {
  asio::co_spawn(self->w_.io.get_executor(), self->reader(self), asio::detached);
  asio::co_spawn(self->w_.io.get_executor(), self->writer(self), asio::detached);
  self->flush();
}

std::int32_t UpstreamH2Connection::open(UpstreamH2Stream& stream, const http::HeaderList& fields,
                                        bool end_stream) {
  if (!usable()) return -1;
  const std::int32_t id = codec.submitRequest(fields, end_stream);
  if (id < 0) return -1;
  streams_.insert(id, &stream);
  flush();
  return id;
}

void UpstreamH2Connection::detach(std::int32_t id) {
  UpstreamH2Stream** found = streams_.find(id);
  if (!found) return;
  if (!(*found)->closed && !closing_) codec.resetStream(id, NGHTTP2_CANCEL);
  streams_.erase(id);
  if (streams_.empty()) idle_since_ = w_.time.coarseSteady();
  flush();
}

void UpstreamH2Connection::close() {
  if (closing_) return;
  closing_ = true;
  error_code ec;
  conn_->socket.cancel(ec);
  flush();
}

UpstreamH2Stream* UpstreamH2Connection::find(std::int32_t id) {
  UpstreamH2Stream** found = streams_.find(id);
  return found ? *found : nullptr;
}

void UpstreamH2Connection::failAll() {
  streams_.forEach([](std::int32_t, UpstreamH2Stream* s) {
    if (!s->closed) {
      s->closed = true;
      if (s->error == 0) s->error = NGHTTP2_CONNECT_ERROR;
    }
    s->wake();
  });
}

void UpstreamH2Connection::onResponseHead(std::int32_t id, int status, http::HeaderList fields) {
  if (auto* s = find(id)) {
    s->head = true;
    s->status = status;
    s->fields = std::move(fields);
    s->wake();
  }
}

void UpstreamH2Connection::onResponseData(std::int32_t id, std::string_view data) {
  if (auto* s = find(id)) {
    s->data.append(data);  // bounded by the stream window: consumed as it leaves
    s->wake();
  } else {
    codec.consume(id, data.size());
  }
}

void UpstreamH2Connection::onResponseTrailers(std::int32_t id, http::HeaderList trailers) {
  if (auto* s = find(id)) s->trailers = std::move(trailers);
}

void UpstreamH2Connection::onResponseEnd(std::int32_t id) {
  if (auto* s = find(id)) {
    s->ended = true;
    s->wake();
  }
}

void UpstreamH2Connection::onStreamClosed(std::int32_t id, std::uint32_t error_code) {
  if (auto* s = find(id)) {
    s->closed = true;
    s->error = error_code;
    s->wake();
  }
}

// `keep_alive` holds the connection until the coroutine ends.
Task<void> UpstreamH2Connection::reader(std::shared_ptr<UpstreamH2Connection> keep_alive) {
  IoBuffer& buf = conn_->buffer;
  error_code ec;
  while (!closing_) {
    buf.clear();
    std::size_t n = co_await readSome(conn_->socket, conn_->tlsStream(),
                                      asio::buffer(buf.writePtr(), buf.writable()), ec);
    if (ec || n == 0) break;
    const bool ok = codec.receive(std::string_view(buf.writePtr(), n));
    flush();
    // Requests waiting for their body to drain may go on now (WINDOW_UPDATE).
    streams_.forEach([](std::int32_t, UpstreamH2Stream* s) { s->wake(); });
    if (!ok || codec.wantsClose()) break;
  }
  closing_ = true;
  failAll();
  flush();
  keep_alive.reset();
}

Task<void> UpstreamH2Connection::writer(std::shared_ptr<UpstreamH2Connection> keep_alive) {
  error_code ec;
  for (;;) {
    std::string_view out = codec.output();
    if (out.empty()) {
      if (closing_) break;
      co_await write_wake_.async_wait(asio::redirect_error(kUseAwaitable, ec));
      continue;
    }
    std::size_t n = 0;
    if (conn_->tls) {
      n = co_await writeAll(conn_->socket, conn_->tlsStream(), asio::buffer(out), ec);
    } else {
      n = writeNow(conn_->socket, asio::buffer(out), rest_, ec);
      if (!ec && !rest_.empty()) n += co_await writeAll(conn_->socket, nullptr, rest_, ec);
    }
    codec.consumeOutput(n);
    // Their queued body may have left.
    streams_.forEach([](std::int32_t, UpstreamH2Stream* s) { s->wake(); });
    if (ec) {
      closing_ = true;
      conn_->socket.cancel(ec);
      break;
    }
  }
  conn_->socket.close(ec);
  keep_alive.reset();
}

std::shared_ptr<UpstreamH2Connection> UpstreamH2Pool::find(const std::string& key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return nullptr;
  auto& list = it->second;
  std::erase_if(list, [](const auto& c) { return !c->usable() && c->codec.openStreams() == 0; });
  for (auto& c : list)
    if (c->usable()) return c;
  return nullptr;
}

void UpstreamH2Pool::add(const std::string& key, std::shared_ptr<UpstreamH2Connection> conn) {
  conns_[key].push_back(std::move(conn));
}

void UpstreamH2Pool::sweep(Clock::time_point now) {
  for (auto it = conns_.begin(); it != conns_.end();) {
    auto& list = it->second;
    std::erase_if(list, [&](const std::shared_ptr<UpstreamH2Connection>& c) {
      if (c->idleSince(now)) c->close();
      return c->closing() && c->codec.openStreams() == 0;
    });
    it = list.empty() ? conns_.erase(it) : std::next(it);
  }
}

void UpstreamH2Pool::closeAll() {
  for (auto& [key, list] : conns_)
    for (auto& c : list) c->close();
  conns_.clear();
}

}  // namespace portico::proxy
