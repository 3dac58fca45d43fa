#include "filters/quota/quota_filter.h"

#include <time.h>

#include <chrono>
#include <cstdio>

#include "api/services.h"
#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"
#include "filters/rate_limit/key_spec.h"
#include "ratelimit/local_store.h"

namespace portico::filters {

PeriodWindow periodAt(QuotaPeriod period, std::int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  tm parts{};
  gmtime_r(&t, &parts);
  char id[32];
  parts.tm_min = parts.tm_sec = 0;
  switch (period) {
    case QuotaPeriod::Hour:
      std::snprintf(id, sizeof id, "%04d-%02d-%02dT%02d", parts.tm_year + 1900, parts.tm_mon + 1,
                    parts.tm_mday, parts.tm_hour);
      parts.tm_hour += 1;
      break;
    case QuotaPeriod::Day:
      std::snprintf(id, sizeof id, "%04d-%02d-%02d", parts.tm_year + 1900, parts.tm_mon + 1,
                    parts.tm_mday);
      parts.tm_hour = 0;
      parts.tm_mday += 1;
      break;
    case QuotaPeriod::Month:
      std::snprintf(id, sizeof id, "%04d-%02d", parts.tm_year + 1900, parts.tm_mon + 1);
      parts.tm_hour = 0;
      parts.tm_mday = 1;
      parts.tm_mon += 1;
      break;
  }
  return {id, static_cast<std::int64_t>(timegm(&parts))};  // timegm normalises the overflow
}

namespace {

// KEYS[1]: the period's counter. ARGV: limit, expiry (unix ms).
// Returns {admitted (0/1), count after this request}.
constexpr std::string_view kQuotaScript = R"lua(
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
if c > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {0, c - 1}
end
return {1, c}
)lua";

// Made on first use (a Redis-backed quota's config load), like the rate-limit scripts.
const redis::Script& quotaScript() {
  static const redis::Script script{std::string(kQuotaScript)};
  return script;
}

struct QuotaConfig {
  std::int64_t limit = 0;
  QuotaPeriod period = QuotaPeriod::Day;
  std::vector<KeyPart> key;
  CounterBackend backend;
  std::shared_ptr<ratelimit::LocalStore> local;
  const redis::Script* script = nullptr;  // Redis backend only
};

class QuotaFilter final : public api::Filter {
 public:
  explicit QuotaFilter(const QuotaConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(ctx.wall_start.time_since_epoch()).count();
    window_ = periodAt(c_.period, now);
    now_ = now;
    buildKey(c_.key, ctx, key_);
    key_ += '|';
    key_ += window_.id;
    if (c_.backend.redis) {
      redis_ = &ctx.worker->redis(*c_.backend.settings);
      return api::FilterStatus::Async;
    }
    std::size_t which = 0;
    ratelimit::Outcome o =
        c_.local->take(key_, ctx.worker ? ctx.worker->workerId() : -1, now * 1'000'000, which);
    return decide(ctx, o.allowed, c_.limit - o.remaining);
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    std::vector<std::string> keys{"portico:quota:" + c_.backend.name + ":" + key_};
    // Kept a day past the period's end (clock skew between nodes).
    std::vector<std::string> args{std::to_string(c_.limit),
                                  std::to_string((window_.ends + 86400) * 1000)};
    redis_->eval(*c_.script, keys, args, [this, &ctx, done = std::move(done)](redis::Reply r) {
      if (r.type == redis::Reply::Type::Array && r.elements.size() == 2) {
        done(decide(ctx, r.elements[0].integer == 1, r.elements[1].integer));
        return;
      }
      if (!c_.backend.fail_open) {
        done(unavailable(ctx, "quota backend unavailable"));
        return;
      }
      unknown_ = true;  // admitted without counting: no figure to report
      done(api::FilterStatus::Continue);
    });
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    if (used_ < 0 || unknown_ || !ctx.response) return api::FilterStatus::Continue;
    addHeaders(ctx.response->headers);
    return api::FilterStatus::Continue;
  }

 private:
  api::FilterStatus decide(api::RequestContext& ctx, bool allowed, std::int64_t used) {
    used_ = used;
    if (allowed) return api::FilterStatus::Continue;
    replyError(ctx, 429, "quota exceeded");
    ctx.local_reply.headers.add("Retry-After", std::to_string(window_.ends - now_));
    addHeaders(ctx.local_reply.headers);
    used_ = -1;  // headers already on the reply
    return api::FilterStatus::Reply;
  }

  void addHeaders(http::HeaderList& h) const {
    h.add("X-Quota-Limit", std::to_string(c_.limit));
    h.add("X-Quota-Remaining", std::to_string(std::max<std::int64_t>(0, c_.limit - used_)));
    h.add("X-Quota-Reset", std::to_string(window_.ends - now_));
  }

  const QuotaConfig& c_;
  std::string key_;
  PeriodWindow window_;
  std::int64_t now_ = 0;
  std::int64_t used_ = -1;
  bool unknown_ = false;
  redis::Client* redis_ = nullptr;
};

}  // namespace

api::FilterType quotaFilterType() {
  return {
      "quota", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        const std::size_t errors = b.diag.items().size();
        QuotaConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        r.integer("limit", 0, 1'000'000'000'000LL, c.limit, true);
        r.choice(
            "period",
            {{"hour", QuotaPeriod::Hour}, {"day", QuotaPeriod::Day}, {"month", QuotaPeriod::Month}},
            c.period);
        c.key = readKeySpec(r.get("key"), r.childPath("key"), b.diag, KeyPart::Kind::Consumer);
        readCounterBackend(r, b.path, c.backend);
        r.finish();
        if (b.diag.items().size() != errors) return nullptr;
        if (!c.backend.redis) {
          // A local quota lives as long as the process (and across reloads): for one node
          // and for tests. Periods are part of the key; old ones are dropped when idle.
          const std::int64_t period_us = 31LL * 86400 * 1'000'000;
          std::vector<ratelimit::Limit> limits{{c.limit, period_us}};
          const std::string key = "quota|" + c.backend.name + "|" + std::to_string(c.limit);
          c.local = sharedLocalStore(b.services, key, ratelimit::Algorithm::Fixed, limits);
        } else {
          c.script = &quotaScript();
        }
        return std::make_shared<ConfigFactory<QuotaFilter, QuotaConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
