#include "filters/api_lifecycle/api_lifecycle_filter.h"

#include "core/error_body.h"
#include "http/http_date.h"

namespace portico::filters {
namespace {

struct Lifecycle {
  bool retired = false;
  std::vector<std::pair<std::string, std::string>> headers;  // deprecated: added to answers
  std::string api;
};

class ApiLifecycleFilter final : public api::Filter {
 public:
  explicit ApiLifecycleFilter(std::shared_ptr<const Lifecycle> l) : l_(std::move(l)) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    if (!l_->retired) return api::FilterStatus::Continue;
    ctx.local_reply.status = 410;
    ctx.local_reply.headers.add("Content-Type", "application/json");
    ctx.local_reply.body = errorBody(410, "api \"" + l_->api + "\" is retired", ctx.request_id);
    return api::FilterStatus::Reply;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    for (const auto& [name, value] : l_->headers) ctx.response->headers.add(name, value);
    return api::FilterStatus::Continue;
  }

 private:
  std::shared_ptr<const Lifecycle> l_;
};

class ApiLifecycleFactory final : public api::FilterFactory {
 public:
  explicit ApiLifecycleFactory(std::shared_ptr<const Lifecycle> l) : l_(std::move(l)) {}
  api::FilterPtr create() const override { return std::make_unique<ApiLifecycleFilter>(l_); }

 private:
  std::shared_ptr<const Lifecycle> l_;
};

}  // namespace

std::shared_ptr<const api::FilterFactory> makeApiLifecycleFactory(const config::ApiConfig& api,
                                                                  std::int64_t loaded_at) {
  using State = config::ApiConfig::State;
  if (api.state != State::Deprecated && api.state != State::Retired) return nullptr;
  auto l = std::make_shared<Lifecycle>();
  l->api = api.name;
  l->retired = api.state == State::Retired;
  if (api.state == State::Deprecated) {
    l->headers.emplace_back("Deprecation",
                            "@" + std::to_string(api.deprecated_at.value_or(loaded_at)));
    if (api.sunset)
      l->headers.emplace_back(
          "Sunset", http::formatHttpDate(http::SystemTime(std::chrono::seconds(*api.sunset))));
    if (!api.docs.empty())
      l->headers.emplace_back("Link", "<" + api.docs + ">; rel=\"deprecation\"");
  }
  return std::make_shared<ApiLifecycleFactory>(std::move(l));
}

}  // namespace portico::filters
