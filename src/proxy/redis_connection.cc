#include "proxy/redis_connection.h"

#include <charconv>
#include <deque>
#include <optional>
#include <unordered_set>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/basic_resolver.hpp>
#include <boost/asio/post.hpp>

#include "core/address.h"
#include "proxy/tls_stream.h"
#include "proxy/worker_context.h"
#include "tls/client_context.h"

namespace portico::proxy {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{2000};

redis::Reply convert(const redisReply* r) {
  redis::Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = redis::Reply::Type::String;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis::Reply::Type::Status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis::Reply::Type::Error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = redis::Reply::Type::Integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis::Reply::Type::Array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      break;  // nil
  }
  return out;
}

void appendNumber(std::string& out, std::size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// RESP: *<count>\r\n then $<len>\r\n<bytes>\r\n per argument.
void appendBulk(std::string& out, std::string_view arg) {
  out += '$';
  appendNumber(out, arg.size());
  out += "\r\n";
  out += arg;
  out += "\r\n";
}

void appendCommand(std::string& out, const std::vector<std::string>& args) {
  out += '*';
  appendNumber(out, args.size());
  out += "\r\n";
  for (const auto& a : args) appendBulk(out, a);
}

class Connection final : public RedisClient, public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, redis::Settings s, const TimeSource& time)
      : io_(io), time_(time), s_(std::move(s)), socket_(io), wake_(io), tick_(io) {
    if (s_.tls) {
      auto built = tls::ClientContext::build(*s_.tls);
      if (built) {
        tls_context_ = *built;
      } else {
        config_error_ = "redis tls: " + built.error().message;
      }
    }
  }
  ~Connection() override {
    if (reader_) redisReaderFree(reader_);
  }

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(io_.get_executor(), run(self), asio::detached);
    asio::co_spawn(io_.get_executor(), watch(self), asio::detached);
  }

  void stop() override {
    stopped_ = true;
    fail("redis client stopped");
    tick_.cancel();
  }

  bool connected() const override { return state_ == State::Ready; }

  void command(std::vector<std::string> args, Callback done) override {
    if (state_ == State::Down) {
      done(redis::Reply::error(down_reason_));
      return;
    }
    appendCommand(out_, args);
    pending_.push_back({std::move(done), time_.coarseSteady() + s_.timeout});
    scheduleFlush();
  }

  void eval(const redis::Script& script, const std::vector<std::string>& keys,
            const std::vector<std::string>& args, Callback done) override {
    if (state_ == State::Down) {
      done(redis::Reply::error(down_reason_));
      return;
    }
    const auto deadline = time_.coarseSteady() + s_.timeout;
    if (!loaded_.count(&script)) {
      // Pipelined ahead of the call: loaded by the time EVALSHA runs.
      loaded_.insert(&script);
      appendCommand(out_, {"SCRIPT", "LOAD", script.text});
      pending_.push_back({{}, deadline, &script});
    }
    // EVALSHA sha numkeys keys... args..., formatted in place.
    out_ += '*';
    appendNumber(out_, 3 + keys.size() + args.size());
    out_ += "\r\n";
    appendBulk(out_, "EVALSHA");
    appendBulk(out_, script.sha1);
    char n[24];
    auto [end, ec] = std::to_chars(n, n + sizeof n, keys.size());
    appendBulk(out_, std::string_view(n, static_cast<std::size_t>(end - n)));
    for (const auto& k : keys) appendBulk(out_, k);
    for (const auto& a : args) appendBulk(out_, a);
    pending_.push_back({std::move(done), deadline, &script});
    scheduleFlush();
  }

 private:
  enum class State { Connecting, Ready, Down };
  struct Pending {
    Callback done;
    Clock::time_point deadline;
    // EVALSHA and SCRIPT LOAD: an error means the script is not (or no longer) loaded here.
    const redis::Script* script = nullptr;
  };

  void scheduleFlush() {
    if (flush_scheduled_ || state_ != State::Ready) return;
    flush_scheduled_ = true;
    // Commands issued in the same event-loop turn leave in one write.
    asio::post(io_, [self = shared_from_this()] {
      self->flush_scheduled_ = false;
      self->flush();
    });
  }

  void flush() {
    if (writing_ || state_ != State::Ready || out_.empty()) return;
    if (!tls_) {
      boost::system::error_code ec;
      std::size_t n = socket_.write_some(asio::buffer(out_), ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        fail("redis write failed: " + ec.message());
        return;
      }
      out_.erase(0, n);
      if (out_.empty()) return;
    }
    writing_ = true;
    asio::co_spawn(io_.get_executor(), writeLoop(shared_from_this(), generation_), asio::detached);
  }

  Task<void> writeLoop(std::shared_ptr<Connection> /*alive*/, std::uint64_t gen) {
    while (gen == generation_ && !out_.empty()) {
      sending_.swap(out_);
      out_.clear();
      boost::system::error_code ec;
      co_await writeAll(socket_, tls_ ? &*tls_ : nullptr, asio::buffer(sending_), ec);
      if (gen != generation_) co_return;
      if (ec) {
        fail("redis write failed: " + ec.message());
        co_return;
      }
    }
    if (gen == generation_) writing_ = false;
  }

  Task<void> readLoop(std::shared_ptr<Connection> /*alive*/, std::uint64_t gen) {
    char buf[16 * 1024];
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = co_await readSome(socket_, tls_ ? &*tls_ : nullptr, asio::buffer(buf), ec);
      if (gen != generation_) co_return;
      if (ec) {
        fail("redis connection lost: " + ec.message());
        co_return;
      }
      if (redisReaderFeed(reader_, buf, n) != REDIS_OK) {
        fail("redis protocol error");
        co_return;
      }
      for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
          fail("redis protocol error");
          co_return;
        }
        if (!raw) break;
        redis::Reply reply = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        if (pending_.empty()) {
          fail("redis sent a reply nobody asked for");
          co_return;
        }
        Callback done = std::move(pending_.front().done);
        const redis::Script* script = pending_.front().script;
        pending_.pop_front();
        // A script refused (or flushed from Redis: NOSCRIPT) is loaded again by the next call.
        if (script && reply.isError()) loaded_.erase(script);
        if (done) done(std::move(reply));
        if (gen != generation_) co_return;
      }
    }
  }

  // Connects, shakes hands and authenticates, then serves until the connection fails; again
  // after a back-off, for as long as the worker runs.
  Task<void> run(std::shared_ptr<Connection> self) {
    milliseconds backoff = kMinBackoff;
    while (!stopped_) {
      state_ = State::Connecting;
      std::string error;
      bool ok = false;
      if (config_error_.empty()) {
        ok = co_await connectOnce(error);
      } else {
        error = config_error_;
      }
      if (stopped_) break;
      if (!ok) {
        down_reason_ = "redis unavailable: " + error;
        fail(down_reason_);
        wake_.expires_after(backoff);
        boost::system::error_code ec;
        co_await wake_.async_wait(asio::redirect_error(kUseAwaitable, ec));
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      backoff = kMinBackoff;
      state_ = State::Ready;
      asio::co_spawn(io_.get_executor(), readLoop(self, generation_), asio::detached);
      flush();
      wake_.expires_at(Clock::time_point::max());
      boost::system::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(kUseAwaitable, ec));  // until fail()
      if (!stopped_) {
        wake_.expires_after(kMinBackoff);
        co_await wake_.async_wait(asio::redirect_error(kUseAwaitable, ec));
      }
    }
  }

  Task<bool> connectOnce(std::string& error) {
    std::string address = s_.address;
    if (!s_.sentinels.empty()) {
      address.clear();
      for (const auto& sentinel : s_.sentinels) {
        bool up = co_await connectTo(sentinel, error);
        if (!up) continue;
        // GCC 12: no braced lists inside a co_await expression.
        std::vector<std::string> ask{"SENTINEL", "get-master-addr-by-name", s_.master_name};
        redis::Reply r = co_await roundTrip(std::move(ask), error);
        closeSocket();
        if (r.type == redis::Reply::Type::Array && r.elements.size() == 2) {
          const std::string& host = r.elements[0].str;
          address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                    r.elements[1].str;
          break;
        }
        if (error.empty()) error = "sentinel " + sentinel + " does not know " + s_.master_name;
      }
      if (address.empty()) co_return false;
    }
    bool up = co_await connectTo(address, error);
    if (!up) co_return false;
    if (!s_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!s_.username.empty()) auth.push_back(s_.username);
      auth.push_back(s_.password);
      redis::Reply r = co_await roundTrip(std::move(auth), error);
      if (!error.empty() || r.isError()) {
        if (error.empty()) error = "AUTH refused: " + r.str;
        closeSocket();
        co_return false;
      }
    }
    if (s_.database != 0) {
      std::vector<std::string> select{"SELECT", std::to_string(s_.database)};
      redis::Reply r = co_await roundTrip(std::move(select), error);
      if (!error.empty() || r.isError()) {
        if (error.empty()) error = "SELECT refused: " + r.str;
        closeSocket();
        co_return false;
      }
    }
    co_return true;
  }

  Task<bool> connectTo(const std::string& address, std::string& error) {
    closeSocket();
    loaded_.clear();  // a new connection may be to a Redis that never saw our scripts
    tls_.reset();
    if (reader_) redisReaderFree(reader_);
    reader_ = redisReaderCreate();
    auto hp = parseHostPort(address);
    if (!hp) {
      error = hp.error().message;
      co_return false;
    }
    connect_deadline_ = time_.coarseSteady() + s_.connect_timeout;
    connecting_ = true;
    asio::ip::basic_resolver<tcp, Executor> resolver(io_.get_executor());
    boost::system::error_code ec;
    auto results = co_await resolver.async_resolve(hp->host, std::to_string(hp->port),
                                                   asio::redirect_error(kUseAwaitable, ec));
    if (!ec) {
      ec = asio::error::host_not_found;
      for (const auto& entry : results) {
        socket_.close(ec);
        co_await socket_.async_connect(entry.endpoint(), asio::redirect_error(kUseAwaitable, ec));
        if (!ec || time_.coarseSteady() >= connect_deadline_) break;
      }
    }
    if (!ec && tls_context_) {
      socket_.set_option(tcp::no_delay(true), ec);
      tls_.emplace(socket_, tls_context_->context());
      tls_context_->prepare(tls_->native_handle(), hp->host);
      co_await tls_->handshake(false, ec);
    }
    connecting_ = false;
    if (ec) {
      error = address + ": " +
              (time_.coarseSteady() >= connect_deadline_ ? "connect timed out" : ec.message());
      closeSocket();
      co_return false;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    co_return true;
  }

  // One command on a connection that is not serving yet (handshake, sentinel query).
  Task<redis::Reply> roundTrip(std::vector<std::string> args, std::string& error) {
    std::string out;
    appendCommand(out, args);
    connect_deadline_ = time_.coarseSteady() + s_.timeout;
    connecting_ = true;
    boost::system::error_code ec;
    co_await writeAll(socket_, tls_ ? &*tls_ : nullptr, asio::buffer(out), ec);
    redis::Reply reply;
    char buf[4096];
    while (!ec) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        ec = asio::error::invalid_argument;
        break;
      }
      if (raw) {
        reply = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        break;
      }
      std::size_t n = co_await readSome(socket_, tls_ ? &*tls_ : nullptr, asio::buffer(buf), ec);
      if (!ec) redisReaderFeed(reader_, buf, n);
    }
    connecting_ = false;
    if (ec) error = "redis handshake failed: " + ec.message();
    co_return reply;
  }

  // Enforces the connect and command deadlines.
  Task<void> watch(std::shared_ptr<Connection> /*alive*/) {
    const auto period = std::clamp(s_.timeout / 4, milliseconds(10), milliseconds(100));
    while (!stopped_) {
      tick_.expires_after(period);
      boost::system::error_code ec;
      co_await tick_.async_wait(asio::redirect_error(kUseAwaitable, ec));
      const auto now = time_.coarseSteady();
      if (connecting_ && now >= connect_deadline_) {
        closeSocket();  // the pending connect or handshake fails
      } else if (state_ == State::Ready && !pending_.empty() && now >= pending_.front().deadline) {
        fail("redis timed out");
      } else if (state_ == State::Connecting && !pending_.empty() &&
                 now >= pending_.front().deadline) {
        // Commands queued for the first connection: fail them, keep connecting.
        auto pending = std::move(pending_);
        pending_.clear();
        out_.clear();
        loaded_.clear();  // queued SCRIPT LOADs went with them
        for (auto& p : pending)
          if (p.done) p.done(redis::Reply::error("redis timed out (connecting)"));
      }
    }
  }

  void closeSocket() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void fail(const std::string& why) {
    ++generation_;
    const bool was_ready = state_ == State::Ready;
    state_ = State::Down;
    if (down_reason_.empty() || was_ready) down_reason_ = why;
    writing_ = false;
    closeSocket();
    out_.clear();
    auto pending = std::move(pending_);
    pending_.clear();
    wake_.cancel();
    for (auto& p : pending)
      if (p.done) p.done(redis::Reply::error(why));
  }

  asio::io_context& io_;
  const TimeSource& time_;
  redis::Settings s_;
  Socket socket_;
  std::shared_ptr<const tls::ClientContext> tls_context_;
  std::string config_error_;
  std::optional<TlsStream> tls_;
  redisReader* reader_ = nullptr;
  Timer wake_;
  Timer tick_;
  State state_ = State::Connecting;
  std::string down_reason_;
  std::uint64_t generation_ = 0;
  bool stopped_ = false;
  bool connecting_ = false;
  Clock::time_point connect_deadline_{};
  std::string out_;
  std::string sending_;
  bool writing_ = false;
  bool flush_scheduled_ = false;
  std::deque<Pending> pending_;
  std::unordered_set<const redis::Script*> loaded_;  // on this connection
};

}  // namespace

std::shared_ptr<RedisClient> makeRedisClient(asio::io_context& io, redis::Settings settings,
                                             const TimeSource& time) {
  auto c = std::make_shared<Connection>(io, std::move(settings), time);
  c->start();
  return c;
}

}  // namespace portico::proxy
