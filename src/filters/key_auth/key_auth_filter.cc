#include "filters/key_auth/key_auth_filter.h"

#include "auth/consumer_directory.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct KeyAuthConfig {
  std::string header = "apikey";  // "" = not read from a header
  std::string query = "apikey";   // "" = not read from the query
  bool hide_credentials = false;  // strip the key before forwarding
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
};

class KeyAuthFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;  // one instance serves every request
  explicit KeyAuthFilter(const KeyAuthConfig& c) : c_(&c) {}
  bool authenticates() const override { return true; }

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    auto& req = *ctx.request;
    const std::string* from_header = c_->header.empty() ? nullptr : req.headers.find(c_->header);
    QueryParam from_query;
    if (!from_header && !c_->query.empty()) from_query = findQueryParam(req.query, c_->query);
    if (!from_header && !from_query.found)
      return refuse(ctx, api::AuthFailure::MissingCredentials, "Key realm=\"portico\"");
    if (from_query.found) maskQueryParam(ctx.original_path, c_->query);  // never logged
    const std::string_view key = from_header ? std::string_view(*from_header) : from_query.value;
    const api::Consumer* consumer = c_->consumers->byKey(key);
    if (!consumer)
      return refuse(ctx, api::AuthFailure::InvalidCredentials, "Key realm=\"portico\"");
    ctx.consumer = consumer;
    ctx.authenticated = true;
    if (c_->hide_credentials) {
      if (!c_->header.empty()) req.headers.remove(c_->header);
      if (!c_->query.empty()) {
        // Every copy goes, not only the one used.
        for (auto p = findQueryParam(req.query, c_->query); p.found;
             p = findQueryParam(req.query, c_->query))
          eraseQueryParam(req.query, p);
      }
    }
    return api::FilterStatus::Continue;
  }

 private:
  const KeyAuthConfig* c_;
};

}  // namespace

api::FilterType keyAuthFilterType() {
  return {"key-auth",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            KeyAuthConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.string("header", c.header);
            r.string("query", c.query);
            r.boolean("hide_credentials", c.hide_credentials);
            r.finish();
            if (c.header.empty() && c.query.empty())
              b.diag.add(b.path, "give a header or a query parameter to read the key from");
            c.consumers = b.consumers;
            if (!c.consumers) return nullptr;
            return std::make_shared<ConfigFactory<KeyAuthFilter, KeyAuthConfig>>(std::move(c));
          },
          true};
}

}  // namespace portico::filters
