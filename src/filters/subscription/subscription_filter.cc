#include "filters/subscription/subscription_filter.h"

#include <string>
#include <unordered_map>
#include <vector>

#include "api/services.h"
#include "api/worker_services.h"
#include "filters/auth_reply.h"
#include "filters/subscription/usage_book.h"

namespace portico::filters {
namespace {

using nlohmann::json;
using State = config::SubscriptionConfig::State;

struct Subscription {
  State state;
  std::size_t plan;  // into SubscriptionFactory::plans
};

class SubscriptionFactory final : public api::FilterFactory {
 public:
  api::FilterPtr create() const override;

  std::string api;
  std::unordered_map<std::string, Subscription> by_application;
  // Per plan that lists the API: its rate-limit and quota filters.
  struct Plan {
    std::string name;
    std::vector<std::shared_ptr<const api::FilterFactory>> filters;
  };
  std::vector<Plan> plans;
  std::shared_ptr<UsageBook> usage;  // the process's, shared by every snapshot
};

// The plan's quota figures as the answer told the application (the quota filter's headers):
// what the portal shows as the quota left.
QuotaSeen quotaOf(const api::RequestContext& ctx) {
  const http::HeaderList& headers = ctx.response ? ctx.response->headers : ctx.local_reply.headers;
  const std::string* limit = headers.find("x-quota-limit");
  const std::string* remaining = headers.find("x-quota-remaining");
  const std::string* reset = headers.find("x-quota-reset");
  if (!limit || !remaining || !reset) return {};
  const auto now = ctx.wall_start.time_since_epoch();
  QuotaSeen q;
  q.limit = std::strtoll(limit->c_str(), nullptr, 10);
  q.remaining = std::strtoll(remaining->c_str(), nullptr, 10);
  q.resets_at = std::chrono::duration_cast<std::chrono::seconds>(now).count() +
                std::strtoll(reset->c_str(), nullptr, 10);
  q.seen_at = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  return q;
}

// Runs the plan's filters as its own small chain: each may go asynchronous (Redis).
class SubscriptionFilter final : public api::Filter {
 public:
  explicit SubscriptionFilter(const SubscriptionFactory& f) : f_(f) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    if (!ctx.consumer)
      return replyError(ctx, 401,
                        "api " + f_.api + " needs the key of an application subscribed to it");
    const auto it = f_.by_application.find(ctx.consumer->name);
    const std::string who = "application " + ctx.consumer->name;
    subscribed_ = it != f_.by_application.end();  // its use is counted, refused or not
    if (it == f_.by_application.end())
      return replyError(ctx, 403, who + " has no subscription to api " + f_.api);
    if (it->second.state == State::Pending)
      return replyError(ctx, 403, who + ": its subscription to api " + f_.api + " awaits approval");
    if (it->second.state == State::Rejected)
      return replyError(ctx, 403, who + ": its subscription to api " + f_.api + " was rejected");
    for (const auto& factory : f_.plans[it->second.plan].filters)
      inner_.push_back(factory->create());
    return runRequest(ctx);
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    inner_[next_]->onRequestHeadersAsync(
        ctx, [this, &ctx, done = std::move(done)](api::FilterStatus status) mutable {
          ++next_;
          if (status == api::FilterStatus::Continue) status = runRequest(ctx);
          if (status == api::FilterStatus::Async)
            return onRequestHeadersAsync(ctx, std::move(done));
          done(status);
        });
  }

  void onRequestBody(api::RequestContext& ctx, std::string_view chunk, bool end) override {
    for (auto& f : inner_) f->onRequestBody(ctx, chunk, end);
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    next_ = 0;
    return runResponse(ctx);
  }

  void onResponseHeadersAsync(api::RequestContext& ctx, Completion done) override {
    inner_[next_]->onResponseHeadersAsync(
        ctx, [this, &ctx, done = std::move(done)](api::FilterStatus) mutable {
          ++next_;
          if (runResponse(ctx) == api::FilterStatus::Async)
            return onResponseHeadersAsync(ctx, std::move(done));
          done(api::FilterStatus::Continue);
        });
  }

  void onLog(const api::RequestContext& ctx) noexcept override {
    for (auto& f : inner_) f->onLog(ctx);
    if (subscribed_ && ctx.consumer && f_.usage)
      f_.usage->record(ctx.worker ? ctx.worker->workerId() : 0, ctx.consumer->name, f_.api,
                       UsageBook::dayOf(ctx.wall_start), ctx.status,
                       std::chrono::duration_cast<std::chrono::nanoseconds>(ctx.total_latency),
                       quotaOf(ctx));
  }

 private:
  // From next_ on; stops at the first that answers or goes asynchronous (next_ stays on it).
  api::FilterStatus runRequest(api::RequestContext& ctx) {
    for (; next_ < inner_.size(); ++next_) {
      const auto status = inner_[next_]->onRequestHeaders(ctx);
      if (status != api::FilterStatus::Continue) return status;
    }
    return api::FilterStatus::Continue;
  }
  api::FilterStatus runResponse(api::RequestContext& ctx) {
    for (; next_ < inner_.size(); ++next_)
      if (inner_[next_]->onResponseHeaders(ctx) == api::FilterStatus::Async)
        return api::FilterStatus::Async;
    return api::FilterStatus::Continue;
  }

  const SubscriptionFactory& f_;
  std::vector<api::FilterPtr> inner_;
  std::size_t next_ = 0;
  bool subscribed_ = false;
};

api::FilterPtr SubscriptionFactory::create() const {
  return std::make_unique<SubscriptionFilter>(*this);
}

// A filter of the registry built from a config this code writes; errors go under `path`.
std::shared_ptr<const api::FilterFactory> build(const api::FilterRegistry& registry,
                                                const char* type, const json& config,
                                                const std::string& path,
                                                api::FilterBuildContext& context) {
  api::FilterBuildContext c{
      config, path, context.diag, context.services, context.consumers, context.upstreams};
  return registry.find(type)->build(c);
}

}  // namespace

std::shared_ptr<const api::FilterFactory> makeSubscriptionFactory(
    const config::ApiConfig& api, const config::Config& cfg, const api::FilterRegistry& registry,
    api::FilterBuildContext& context) {
  auto f = std::make_shared<SubscriptionFactory>();
  f->api = api.name;
  std::unordered_map<std::string_view, std::size_t> plan_index;
  for (const auto& plan : cfg.plans) {
    if (std::find(plan.apis.begin(), plan.apis.end(), api.name) == plan.apis.end()) continue;
    SubscriptionFactory::Plan built{plan.name, {}};
    // Counters per plan, API and application, shared by the API's routes, kept across reloads.
    const std::string counters = "plan:" + plan.name + ":" + api.name;
    // Built at the plan's path: the keys they share with it (limits, backend, redis) are
    // reported where the plan has them.
    if (!plan.limits.empty()) {
      json limits = json::array();
      for (const auto& l : plan.limits)
        limits.push_back({{"requests", l.requests}, {"per", std::to_string(l.per.count()) + "ms"}});
      json config = plan.counters;
      config.update({{"limits", limits}, {"key", "consumer"}, {"name", counters}});
      if (auto rl = build(registry, "rate-limit", config, plan.path, context))
        built.filters.push_back(std::move(rl));
    }
    if (plan.quota) {
      json config = plan.counters;
      config.update({{"limit", plan.quota->requests},
                     {"period", plan.quota->per},
                     {"key", "consumer"},
                     {"name", counters}});
      if (auto q = build(registry, "quota", config, plan.path, context))
        built.filters.push_back(std::move(q));
    }
    plan_index.emplace(plan.name, f->plans.size());
    f->plans.push_back(std::move(built));
  }
  if (f->plans.empty()) return nullptr;
  f->usage = std::static_pointer_cast<UsageBook>(context.services.shared(
      std::string(kUsageBookKey), [] { return std::make_shared<UsageBook>(); }));
  for (const auto& s : cfg.subscriptions) {
    if (s.api != api.name) continue;
    const auto plan = plan_index.find(s.plan);
    if (plan == plan_index.end()) continue;  // refused by the config's checks already
    f->by_application.emplace(s.application, Subscription{s.state, plan->second});
  }
  return f;
}

}  // namespace portico::filters
