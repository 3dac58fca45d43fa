#pragma once
// Everything one worker owns: its event loop, the snapshot it serves, upstream balancers and
// connection pools, counters and the list of live sessions. Touched only on the worker thread
// (except the counters, which the admin thread reads).
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/worker_services.h"
#include "core/io_buffer.h"
#include "core/keyed_hash.h"
#include "core/time_source.h"
#include "observability/metrics.h"
#include "proxy/io_types.h"
#include "proxy/socket_read.h"
#include "proxy/tls_stream.h"
#include "snapshot/snapshot.h"
#include "tls/client_context.h"
#include "upstream/lb/load_balancer.h"

namespace portico::proxy {

std::uint64_t randomSeed();

// Writes on a connection that may be TLS (reads: proxy/socket_read.h). Plain functions returning
// the operation's awaitable (no extra coroutine frame). GCC 12 miscompiles co_await inside ?: and
// inside an if condition (`if (!co_await f())`): always await into a variable first.
template <class Buffers>
Task<std::size_t> writeAll(Socket& socket, TlsStream* tls, const Buffers& buffers,
                           boost::system::error_code& ec) {
  if (tls) return tls->writeAll(buffers, ec);
  return asio::async_write(socket, buffers, asio::redirect_error(kUseAwaitable, ec));
}

// The same, but over TLS several small buffers are first joined in `scratch` (which must live
// until the write ends): Asio's TLS stream writes one buffer per record, so a head and a body
// would cost two records and two syscalls.
template <class Buffers>
bool joinForTls(const Buffers& buffers, std::string& scratch) {
  constexpr std::size_t kJoinUpTo = 64 * 1024;
  if (asio::buffer_size(buffers) > kJoinUpTo) return false;
  scratch.clear();
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
       ++it) {
    asio::const_buffer b(*it);
    scratch.append(static_cast<const char*>(b.data()), b.size());
  }
  return true;
}

template <class Buffers>
Task<std::size_t> writeJoined(Socket& socket, TlsStream* tls, const Buffers& buffers,
                              std::string& scratch, boost::system::error_code& ec) {
  if (tls && joinForTls(buffers, scratch)) return tls->write(asio::buffer(scratch), ec);
  return writeAll(socket, tls, buffers, ec);
}

// writeJoined over TLS done at once, when OpenSSL and the socket take all of it: true, and no
// coroutine frame. False: the caller co_awaits writeJoined with the same arguments, which joins
// the same bytes again and lets OpenSSL resume the record it began (TlsStream::writeAtOnce).
template <class Buffers>
bool writeJoinedAtOnce(TlsStream& tls, const Buffers& buffers, std::string& scratch) {
  return joinForTls(buffers, scratch) && tls.writeAtOnce(asio::buffer(scratch));
}

// Up to this many bytes in several buffers are copied together and sent with send(2): Asio
// sends a buffer sequence with sendmsg(2), whose msghdr and iovec copy-in cost the kernel more
// than copying a small head and body here (docs/performance.md, session 21).
inline constexpr std::size_t kJoinToSendUpTo = 4096;

// One send(2) for `buffers`: a single non-empty buffer as it is, small ones joined on the stack,
// larger sequences through sendmsg(2).
template <class Buffers>
std::size_t sendSome(Socket& socket, const Buffers& buffers, boost::system::error_code& ec) {
  std::size_t total = 0;
  std::size_t non_empty = 0;
  asio::const_buffer only;
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
       ++it) {
    asio::const_buffer b(*it);
    if (b.size() == 0) continue;
    total += b.size();
    ++non_empty;
    only = b;
  }
  if (non_empty == 1) return socket.write_some(only, ec);
  if (non_empty == 0 || total > kJoinToSendUpTo) return socket.write_some(buffers, ec);
  char joined[kJoinToSendUpTo];
  std::size_t at = 0;
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
       ++it) {
    asio::const_buffer b(*it);
    if (b.size() == 0) continue;  // an empty buffer may have no storage: no memcpy from null
    std::memcpy(joined + at, b.data(), b.size());
    at += b.size();
  }
  return socket.write_some(asio::const_buffer(joined, total), ec);
}

// Writes what a plain socket accepts right now (it is in non-blocking mode), without going
// through the event loop: small requests and responses leave in one syscall and no coroutine
// suspension. Returns the bytes written; `rest` gets the buffers still to send (empty when all
// went). TLS streams are not written here.
template <class Buffers>
std::size_t writeNow(Socket& socket, const Buffers& buffers, std::vector<asio::const_buffer>& rest,
                     boost::system::error_code& ec) {
  rest.clear();
  std::size_t n = sendSome(socket, buffers, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  if (ec) return n;
  std::size_t skip = n;
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
       ++it) {
    asio::const_buffer b(*it);
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    rest.push_back(b + skip);
    skip = 0;
  }
  return n;
}

// One upstream connection, idle in the pool or in use by one request.
struct UpstreamConnection {
  explicit UpstreamConnection(asio::io_context& io) : socket(io) {}
  ~UpstreamConnection() {
    if (counted) counted->connections().fetch_sub(1, std::memory_order_relaxed);
  }
  TlsStream* tlsStream() { return tls ? &*tls : nullptr; }
  Socket socket;
  std::shared_ptr<const tls::ClientContext> tls_context;  // keeps the stream's context alive
  std::shared_ptr<upstream::UpstreamState> counted;       // its upstream's open connections
  std::optional<TlsStream> tls;
  IoBuffer buffer{BufferPool::kUpstreamBufferSize};
  std::string target;  // resolved address text, the pool key
  Clock::time_point idle_since{};
  Clock::duration idle_timeout{};
  std::uint64_t requests = 0;
  // The last read was short and a FIN may hide behind it (readAnswerStart): the next read
  // looks at once (readMore).
  bool read_unsure = false;
};

class ConnectionPool {
 public:
  // With `buffers`, an idle connection's read buffer waits there (parked) until the
  // connection is taken again.
  explicit ConnectionPool(BufferPool* buffers = nullptr) : buffers_(buffers) {}
  // An idle connection to `target`, most recently used first; nullptr when none.
  std::unique_ptr<UpstreamConnection> acquire(const std::string& target);
  // Keeps the connection for reuse unless the pool for its target is full.
  void release(std::unique_ptr<UpstreamConnection> conn, const config::PoolConfig& cfg,
               Clock::time_point now);
  // Closes connections idle for longer than their timeout.
  void sweep(Clock::time_point now);
  void clear() { idle_.clear(); }
  std::size_t idleCount() const;
  std::size_t targetCount() const { return idle_.size(); }
  static constexpr std::size_t kKeepEmptyTargets = 64;

 private:
  BufferPool* buffers_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>> idle_;
};

class UpstreamH2Pool;
class RedisClient;
struct OriginUpstreams;

// Intrusive list node: sessions register themselves for deadline sweeps and drain.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called by the sweeper; the session cancels what its deadline guards.
  virtual void checkDeadline(Clock::time_point now) = 0;
  // Called when the worker starts draining: idle sessions close at once.
  virtual void onDrain() = 0;
  SessionBase* prev = nullptr;
  SessionBase* next = nullptr;
};

struct WorkerContext final : api::WorkerServices {
  WorkerContext(asio::io_context& io_context, int worker_id, observability::WorkerStats& s,
                const TimeSource& clock = realTime())
      : io(io_context), id(worker_id), stats(s), time(clock) {}
  ~WorkerContext() override;

  int workerId() const override { return id; }
  redis::Client& redis(const redis::Settings& settings) override;
  void after(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void post(std::function<void()> fn) override;
  std::uint64_t newSpanId() override { return spanId(); }
  std::uint64_t random() override { return rng.next(); }
  void countFilterEvent(std::string_view filter, std::string_view event) override {
    stats.filterEvent(filter, event).add();
  }
  // Closes Redis connections (the worker is exiting).
  void stopClients();

  asio::io_context& io;
  int id;
  observability::WorkerStats& stats;
  const TimeSource& time;  // every time read on this worker's request path
  std::shared_ptr<const snapshot::Snapshot> snapshot;
  std::vector<observability::RouteStats*> route_stats;        // by route index
  std::vector<observability::UpstreamStats*> upstream_stats;  // by upstream index
  // By consumer index, when the config asks for per-consumer series; else empty.
  std::vector<observability::ConsumerStats*> consumer_stats;
  // A config release (ADR 0014): `candidate` takes `candidate_percent` of new requests, with
  // its own route table (the indexes are the candidate's). Null when none runs.
  std::shared_ptr<const snapshot::Snapshot> candidate;
  std::uint32_t candidate_percent = 0;
  std::vector<observability::RouteStats*> candidate_route_stats;
  std::vector<observability::UpstreamStats*> candidate_upstream_stats;
  // Spare connection buffers: a keep-alive client connection parks its own in `buffers` while
  // it waits for its next request, a pooled upstream connection its larger one in
  // `upstream_buffers` while it is idle (IoBuffer::park).
  BufferPool buffers;
  BufferPool upstream_buffers{BufferPool::kUpstreamBufferSize, 128};
  ConnectionPool pool{&upstream_buffers};
  std::shared_ptr<UpstreamH2Pool> h2_pool;   // HTTP/2 upstream connections, made on first use
  std::shared_ptr<OriginUpstreams> origins;  // upstreams of URL calls, made on first use
  // TLS sessions to resume, by pool key: a new connection to a TLS upstream skips the full
  // handshake when the upstream accepts the session.
  struct SessionFree {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<SSL_SESSION, SessionFree>, KeyedHash>
      tls_sessions;
  Rng rng{static_cast<std::uint64_t>(id) * 0x9e3779b97f4a7c15ULL + 1};  // retry jitter
  Rng trace_rng{randomSeed()};  // trace and span ids: must differ between processes
  std::uint64_t spanId() {
    std::uint64_t v = 0;
    while (v == 0) v = trace_rng.next();
    return v;
  }
  // Wall clock minus steady clock, refreshed by the sweeper: a request's wall-clock start
  // (for logs) without a second clock read per request.
  std::chrono::system_clock::duration wall_offset{};
  std::chrono::system_clock::time_point wallTime(Clock::time_point t) const {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(t.time_since_epoch()) +
        wall_offset);
  }
  bool draining = false;

  // Balancer for `up`, rebuilt when its targets changed since last use (a URL call's origin
  // brings its own).
  upstream::LoadBalancer& balancer(const snapshot::Upstream& up);
  std::size_t retiredBalancers() const { return retired_balancers_.size(); }
  // Keeps a TLS session to resume for the pool key; at most kMaxTlsSessions keys (then one
  // goes: a URL call's origins can be many).
  void keepTlsSession(const std::string& key, SSL_SESSION* session);
  static constexpr std::size_t kMaxTlsSessions = 1024;

  void installSnapshot(std::shared_ptr<const snapshot::Snapshot> snap);
  // Starts, moves (another percent) or ends (null) a release's candidate.
  void installCandidate(std::shared_ptr<const snapshot::Snapshot> snap, std::uint32_t percent);
  // Counters of route `index` of `snap`: from the table of the snapshot or the candidate it
  // is, else by name (an internal call pinned to a snapshot a reload replaced since).
  observability::RouteStats* routeStatsOf(const snapshot::Snapshot& snap, std::size_t index);
  // Counters of `up`: from the table of the snapshot or candidate it belongs to, else by name
  // (a request that began before a reload).
  observability::UpstreamStats& upstreamStatsOf(const snapshot::Upstream& up);

  void add(SessionBase* s);
  void remove(SessionBase* s);
  template <class F>
  void forEachSession(F&& f) {
    for (SessionBase* s = sessions_; s;) {
      SessionBase* next = s->next;  // f may remove s
      f(*s);
      s = next;
    }
  }
  std::size_t sessionCount() const { return session_count_; }

 private:
  // Two per name: during a release the stable and the candidate snapshot may give an
  // upstream different targets, and requests alternate between them.
  struct Balancer {
    std::string fingerprint;
    std::unique_ptr<upstream::LoadBalancer> lb;
    std::string other_fingerprint;
    std::unique_ptr<upstream::LoadBalancer> other;
  };
  std::unordered_map<std::string, Balancer> balancers_;
  // Balancers replaced while an exchange still held them: freed once none does.
  std::vector<std::unique_ptr<upstream::LoadBalancer>> retired_balancers_;
  std::unordered_map<std::string, std::shared_ptr<RedisClient>> redis_clients_;
  SessionBase* sessions_ = nullptr;
  std::size_t session_count_ = 0;
};

}  // namespace portico::proxy
