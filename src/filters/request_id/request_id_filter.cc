#include "filters/request_id/request_id_filter.h"

#include "config/reader.h"
#include "core/request_id.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

class RequestIdFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;  // config only: one instance serves all
  explicit RequestIdFilter(const RequestIdConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    auto& headers = ctx.request->headers;
    if (!c_.trust_incoming) {
      // The core kept the client's id; replace it with a fresh one.
      ctx.request_id = generateRequestId();
    } else if (const std::string* incoming = headers.find(c_.header);
               incoming && isAcceptableRequestId(*incoming)) {
      ctx.request_id = *incoming;
    }
    headers.set(c_.header, ctx.request_id);
    if (!equalsDefault()) headers.set("X-Request-Id", ctx.request_id);
    return api::FilterStatus::Continue;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    auto& headers = ctx.response->headers;
    if (c_.echo) {
      headers.set(c_.header, ctx.request_id);
    } else {
      headers.remove(c_.header);
      headers.remove("X-Request-Id");
    }
    return api::FilterStatus::Continue;
  }

 private:
  bool equalsDefault() const { return http::equalsIgnoreCase(c_.header, "X-Request-Id"); }
  const RequestIdConfig& c_;
};

}  // namespace

api::FilterType requestIdFilterType() {
  return {"request-id",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            RequestIdConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.string("header", c.header);
            r.boolean("trust_incoming", c.trust_incoming);
            r.boolean("echo", c.echo);
            r.finish();
            if (c.header.empty()) b.diag.add(r.childPath("header"), "must not be empty");
            return std::make_shared<ConfigFactory<RequestIdFilter, RequestIdConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
