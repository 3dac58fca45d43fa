#include "filters/static_response/static_response_filter.h"

#include "config/reader.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

class StaticResponseFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;  // config only: one instance serves all
  explicit StaticResponseFilter(const StaticResponseConfig& c) : c_(c) {}
  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    ctx.local_reply.status = c_.status;
    for (const auto& [name, value] : c_.headers) ctx.local_reply.headers.add(name, value);
    ctx.local_reply.body = c_.body;
    return api::FilterStatus::Reply;
  }

 private:
  const StaticResponseConfig& c_;
};

}  // namespace

api::FilterType staticResponseFilterType() {
  return {"static-response",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            StaticResponseConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.number("status", 200, 599, c.status);
            r.string("body", c.body);
            if (const nlohmann::json* h = r.get("headers")) {
              auto hp = r.childPath("headers");
              if (!h->is_object()) b.diag.add(hp, "expected a map of header name: value");
              for (auto it = h->begin(); h->is_object() && it != h->end(); ++it) {
                std::string v;
                if (config::readString(it.value(), config::joinPath(hp, it.key()), b.diag, v))
                  c.headers.emplace_back(it.key(), v);
              }
            }
            r.finish();
            bool has_type = false;
            for (const auto& [name, _] : c.headers)
              has_type |= http::equalsIgnoreCase(name, "content-type");
            if (!has_type && !c.body.empty()) c.headers.emplace_back("Content-Type", "text/plain");
            if ((c.status == 204 || c.status == 304) && !c.body.empty())
              b.diag.add(r.childPath("body"), "a 204 or 304 response cannot have a body");
            return std::make_shared<ConfigFactory<StaticResponseFilter, StaticResponseConfig>>(
                std::move(c));
          }};
}

}  // namespace portico::filters
