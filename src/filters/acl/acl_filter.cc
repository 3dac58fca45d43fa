#include "filters/acl/acl_filter.h"

#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct AclConfig {
  std::vector<std::string> allow;
  std::vector<std::string> deny;
};

class AclFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;  // config only: one instance serves all
  explicit AclFilter(const AclConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    // No consumer: nobody to allow (an auth filter, or the route's anonymous consumer, names one).
    if (!ctx.consumer) return refuse(ctx, api::AuthFailure::Forbidden);
    for (const auto& g : c_.deny)
      if (ctx.consumer->inGroup(g)) return refuse(ctx, api::AuthFailure::Forbidden);
    if (c_.allow.empty()) return api::FilterStatus::Continue;
    for (const auto& g : c_.allow)
      if (ctx.consumer->inGroup(g)) return api::FilterStatus::Continue;
    return refuse(ctx, api::AuthFailure::Forbidden);
  }

 private:
  const AclConfig& c_;
};

}  // namespace

api::FilterType aclFilterType() {
  return {"acl", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            AclConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.stringList("allow", c.allow);
            r.stringList("deny", c.deny);
            r.finish();
            if (c.allow.empty() && c.deny.empty())
              b.diag.add(b.path, "give allow or deny (lists of consumer groups)");
            return std::make_shared<ConfigFactory<AclFilter, AclConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
