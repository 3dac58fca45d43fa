#include "filters/request_size_limit/request_size_limit_filter.h"

#include "config/reader.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct SizeLimitConfig {
  std::uint64_t max_body = 0;
};

class RequestSizeLimitFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;  // config only: one instance serves all
  explicit RequestSizeLimitFilter(const SizeLimitConfig& c) : c_(c) {}
  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    if (ctx.max_body_bytes == 0 || c_.max_body < ctx.max_body_bytes)
      ctx.max_body_bytes = c_.max_body;
    return api::FilterStatus::Continue;
  }

 private:
  const SizeLimitConfig& c_;
};

}  // namespace

api::FilterType requestSizeLimitFilterType() {
  return {"request-size-limit",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            SizeLimitConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            if (!r.has("max_body")) b.diag.add(b.path, "give max_body (a size such as 64KiB)");
            r.size("max_body", c.max_body);
            r.finish();
            if (r.has("max_body") && c.max_body == 0)
              b.diag.add(r.childPath("max_body"), "must be positive");
            return std::make_shared<ConfigFactory<RequestSizeLimitFilter, SizeLimitConfig>>(c);
          }};
}

}  // namespace portico::filters
