#include "filters/concurrency_limit/concurrency_limit_filter.h"

#include "api/services.h"
#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"
#include "filters/rate_limit/key_spec.h"
#include "ratelimit/concurrency.h"

namespace portico::filters {
namespace {

struct ConcurrencyConfig {
  std::int64_t max = 0;
  std::int64_t queue = 0;
  config::Duration queue_timeout{std::chrono::milliseconds(100)};
  std::vector<KeyPart> key;
  std::shared_ptr<ratelimit::InFlightTable> table;
};

class ConcurrencyLimitFilter final : public api::Filter {
 public:
  explicit ConcurrencyLimitFilter(const ConcurrencyConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    buildKey(c_.key, ctx, key_);
    slot_ = c_.table->get(key_);
    if (slot_->tryAcquire()) {
      acquired_ = true;
      return api::FilterStatus::Continue;
    }
    if (c_.queue == 0 || !ctx.worker) return refuse(ctx);
    return api::FilterStatus::Async;
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    auto waiter = std::make_shared<ratelimit::InFlight::Waiter>();
    // Granted on the releasing request's thread: only the flag is touched there; `done` hands
    // the rest back to this request's worker.
    waiter->grant = [this, done] {
      acquired_ = true;
      done(api::FilterStatus::Continue);
    };
    if (!slot_->enqueue(waiter, static_cast<std::size_t>(c_.queue))) {
      done(refuse(ctx));
      return;
    }
    ctx.worker->after(c_.queue_timeout, [this, &ctx, waiter, slot = slot_, done] {
      if (!waiter->cancel()) return;  // granted meanwhile
      slot->forget(waiter);
      done(refuse(ctx));
    });
  }

  void onLog(const api::RequestContext&) noexcept override {
    if (acquired_) slot_->release();
  }

 private:
  api::FilterStatus refuse(api::RequestContext& ctx) {
    replyError(ctx, 503, "too many requests in flight");
    ctx.local_reply.headers.add("Retry-After", "1");
    return api::FilterStatus::Reply;
  }

  const ConcurrencyConfig& c_;
  std::string key_;
  std::shared_ptr<ratelimit::InFlight> slot_;
  bool acquired_ = false;
};

}  // namespace

api::FilterType concurrencyLimitFilterType() {
  return {
      "concurrency-limit",
      [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        const std::size_t errors = b.diag.items().size();
        ConcurrencyConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        r.integer("max", 1, 1'000'000, c.max, true);
        r.integer("queue", 0, 100'000, c.queue);
        r.duration("queue_timeout", c.queue_timeout);
        c.key = readKeySpec(r.get("key"), r.childPath("key"), b.diag, KeyPart::Kind::Route);
        std::string name = b.path;
        r.string("name", name);
        r.finish();
        if (b.diag.items().size() != errors) return nullptr;
        // In-flight counts carry over a reload that keeps the name and the maximum: the
        // requests still running release into the same table.
        const std::string key = "concurrency|" + name + "|" + std::to_string(c.max);
        c.table = std::static_pointer_cast<ratelimit::InFlightTable>(b.services.shared(key, [&] {
          return std::static_pointer_cast<void>(std::make_shared<ratelimit::InFlightTable>(c.max));
        }));
        return std::make_shared<ConfigFactory<ConcurrencyLimitFilter, ConcurrencyConfig>>(
            std::move(c));
      }};
}

}  // namespace portico::filters
