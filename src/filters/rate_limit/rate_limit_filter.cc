#include "filters/rate_limit/rate_limit_filter.h"

#include <charconv>
#include <cmath>

#include "api/services.h"
#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/call_span.h"
#include "filters/config_factory.h"
#include "filters/rate_limit/key_spec.h"
#include "ratelimit/local_store.h"
#include "ratelimit/redis_scripts.h"

namespace portico::filters {
namespace {

using ratelimit::Algorithm;
using ratelimit::Limit;
using ratelimit::Outcome;

struct RateLimitConfig {
  std::vector<Limit> limits;
  Algorithm algorithm = Algorithm::SlidingWindow;
  bool headers = true;  // next to `key`, which every request reads: still cached at its response
  std::vector<KeyPart> key;
  CounterBackend backend;
  std::shared_ptr<ratelimit::LocalStore> local;
  // Redis down and fail_open: this node's share of the limits.
  std::shared_ptr<ratelimit::LocalStore> fallback;
  std::string redis_prefix;
  std::vector<std::string> redis_args;    // the script's ARGV: the same for every request
  std::vector<std::string> key_suffixes;  // ":<window ms>" per limit
  const redis::Script* script = nullptr;
};

std::int64_t seconds(std::int64_t us) {
  return (us + 999999) / 1000000;  // rounded up: never tell a client to come back too early
}

class RateLimitFilter final : public api::Filter {
 public:
  explicit RateLimitFilter(const RateLimitConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    buildKey(c_.key, ctx, key_);
    if (!c_.backend.redis) return decide(ctx, takeLocal(*c_.local, ctx));
    redis_ = &ctx.worker->redis(*c_.backend.settings);
    return api::FilterStatus::Async;
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    // Per-thread scratch: eval() formats the keys at once, so they need not outlive the call.
    thread_local std::vector<std::string> keys;
    keys.resize(c_.limits.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      keys[i].assign(c_.redis_prefix);
      keys[i] += key_;
      keys[i] += c_.key_suffixes[i];
    }
    done_ = std::move(done);
    call_span_.begin(ctx, "rate-limit redis");
    // Two pointers: small enough for std::function to hold without an allocation.
    redis_->eval(*c_.script, keys, c_.redis_args, [this, &ctx](redis::Reply reply) {
      if (call_span_.active()) traceCall(ctx, reply);
      Outcome o;
      std::size_t which = 0;
      if (!reply.isError() &&
          ratelimit::parseRedisReply(c_.algorithm, c_.limits, reply, o, which)) {
        which_ = which;
        limit_ = c_.limits[which].requests;
        done_(decide(ctx, o));
        return;
      }
      done_(backendDown(ctx));
    });
  }

  // A client span for the Redis call, child of the request's server span.
  void traceCall(api::RequestContext& ctx, const redis::Reply& reply) {
    api::Span& span = call_span_.span();
    span.attr("db.system", "redis");
    span.attr("db.operation", "EVALSHA");
    if (reply.isError()) span.attr("error.message", reply.str);
    call_span_.end(ctx, reply.isError());
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    if (!decided_ || !outcome_.allowed || !c_.headers || !ctx.response)
      return api::FilterStatus::Continue;
    addHeaders(ctx.response->headers);
    return api::FilterStatus::Continue;
  }

 private:
  Outcome takeLocal(ratelimit::LocalStore& store, const api::RequestContext& ctx) {
    const auto now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(ctx.start.time_since_epoch()).count();
    Outcome o = store.take(key_, ctx.worker ? ctx.worker->workerId() : -1, now_us, which_);
    limit_ = store.limits()[which_].requests;  // the store just read them: in the CPU's cache
    return o;
  }

  api::FilterStatus backendDown(api::RequestContext& ctx) {
    if (!c_.backend.fail_open) return unavailable(ctx, "rate limit backend unavailable");
    const Outcome o = takeLocal(*c_.fallback, ctx);
    limit_ = c_.limits[which_].requests;  // the cluster's limit, as when Redis answers
    return decide(ctx, o);
  }

  api::FilterStatus decide(api::RequestContext& ctx, const Outcome& o) {
    decided_ = true;
    outcome_ = o;
    if (o.allowed) return api::FilterStatus::Continue;
    replyError(ctx, 429, "rate limit exceeded");
    ctx.local_reply.headers.add("Retry-After", std::to_string(seconds(o.retry_after_us)));
    if (c_.headers) addHeaders(ctx.local_reply.headers);
    return api::FilterStatus::Reply;
  }

  void addHeaders(http::HeaderList& h) const {
    addNumber(h, "RateLimit-Limit", limit_);
    addNumber(h, "RateLimit-Remaining", outcome_.remaining);
    addNumber(h, "RateLimit-Reset", seconds(outcome_.reset_us));
  }
  // On every response: digits written in place, a name of no class the proxy looks at.
  static void addNumber(http::HeaderList& h, std::string_view name, std::int64_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    h.add(name, std::string_view(digits, static_cast<std::size_t>(end - digits)),
          http::HeaderId::Other);
  }

  const RateLimitConfig& c_;
  std::string key_;
  redis::Client* redis_ = nullptr;
  Completion done_;
  CallSpan call_span_;
  bool decided_ = false;
  Outcome outcome_;
  std::size_t which_ = 0;
  std::int64_t limit_ = 0;  // the requests of the limit `which_` names
};

void readLimits(const nlohmann::json* node, const std::string& path, config::Diagnostics& diag,
                std::vector<Limit>& out) {
  if (!node || !node->is_array() || node->empty()) {
    diag.add(path, "give limits: [ { requests: N, per: 1s }, ... ]");
    return;
  }
  if (node->size() > ratelimit::kMaxLimits) {
    diag.add(path, "at most " + std::to_string(ratelimit::kMaxLimits) + " limits per filter");
    return;
  }
  for (std::size_t i = 0; i < node->size(); ++i) {
    config::ObjectReader r((*node)[i], config::indexPath(path, i), diag);
    std::int64_t requests = -1;
    config::Duration per{0};
    r.integer("requests", 0, 1'000'000'000'000LL, requests, true);
    r.duration("per", per);
    r.finish();
    if (!r.has("per"))
      diag.add(r.path(), "give per: a window such as 1s, 1m, 1h or 1d");
    else if (per.count() <= 0)
      diag.add(r.childPath("per"), "must be positive");
    Limit l;
    l.requests = requests;
    l.window_us = per.count() * 1000;
    out.push_back(l);
  }
}

std::string fingerprint(const RateLimitConfig& c) {
  std::string f = c.backend.name + (c.algorithm == Algorithm::SlidingWindow ? "|sw" : "|tb");
  for (const auto& l : c.limits)
    f += "|" + std::to_string(l.requests) + "/" + std::to_string(l.window_us);
  return f;
}

}  // namespace

api::FilterType rateLimitFilterType() {
  return {
      "rate-limit", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        const std::size_t errors = b.diag.items().size();
        RateLimitConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        readLimits(r.get("limits"), r.childPath("limits"), b.diag, c.limits);
        r.choice("algorithm",
                 {{"sliding_window", Algorithm::SlidingWindow},
                  {"token_bucket", Algorithm::TokenBucket}},
                 c.algorithm);
        c.key = readKeySpec(r.get("key"), r.childPath("key"), b.diag, KeyPart::Kind::Consumer);
        readCounterBackend(r, b.path, c.backend);
        std::int64_t nodes = 1;
        r.integer("cluster_size", 1, 10000, nodes);
        r.boolean("headers", c.headers);
        r.finish();
        if (b.diag.items().size() != errors) return nullptr;

        const std::string fp = fingerprint(c);
        if (!c.backend.redis) {
          c.local = sharedLocalStore(b.services, "rate-limit|" + fp, c.algorithm, c.limits);
        } else {
          auto scaled = c.limits;
          for (auto& l : scaled)
            l.requests = std::max<std::int64_t>(
                1, static_cast<std::int64_t>(std::ceil(double(l.requests) / double(nodes))));
          c.fallback = sharedLocalStore(b.services,
                                        "rate-limit-fallback|" + fp + "|" + std::to_string(nodes),
                                        c.algorithm, std::move(scaled));
          c.redis_prefix = "portico:rl:" + c.backend.name + ":";
          c.redis_args = ratelimit::redisArgs(c.algorithm, c.limits);
          c.script = &ratelimit::redisScript(c.algorithm);
          for (const auto& l : c.limits)
            c.key_suffixes.push_back(":" + std::to_string(l.window_us / 1000));
        }
        return std::make_shared<ConfigFactory<RateLimitFilter, RateLimitConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
