#include "filters/body_rewrite/body_rewrite_filter.h"

#include "config/reader.h"
#include "filters/body_rewrite/replacer.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

// One direction's rewrite.
struct RewriteRules {
  bool enabled = false;
  Replacements replace;
  bool buffered = false;
  std::uint64_t max_buffer = api::BufferedBodyTransform::kDefaultMaxBuffer;
  std::vector<std::string> content_types;  // prefixes; empty = every body

  bool typeListed(const http::HeaderList& headers) const {
    if (content_types.empty()) return true;
    const std::string* type = headers.find("content-type");
    if (!type) return false;
    for (const auto& prefix : content_types)
      if (type->size() >= prefix.size() &&
          http::equalsIgnoreCase(std::string_view(*type).substr(0, prefix.size()), prefix))
        return true;
    return false;
  }
};

struct BodyRewriteConfig {
  RewriteRules request;
  RewriteRules response;
};

class StreamingRewrite final : public api::BodyTransform {
 public:
  explicit StreamingRewrite(const Replacements& rules) : replacer_(rules) {}
  std::string_view name() const override { return "body-rewrite"; }
  bool transform(std::string_view in, bool end, std::string& out, std::string&) override {
    replacer_.feed(in, end, out);
    return true;
  }

 private:
  Replacer replacer_;
};

class BufferedRewrite final : public api::BufferedBodyTransform {
 public:
  BufferedRewrite(const Replacements& rules, std::size_t max_buffer)
      : BufferedBodyTransform(max_buffer), rules_(rules) {}
  std::string_view name() const override { return "body-rewrite"; }

 protected:
  bool transformWhole(std::string& body, std::string&) override {
    std::string out;
    Replacer(rules_).feed(body, true, out);
    body = std::move(out);
    return true;
  }

 private:
  const Replacements& rules_;
};

std::unique_ptr<api::BodyTransform> makeTransform(const RewriteRules& rules) {
  if (rules.buffered) return std::make_unique<BufferedRewrite>(rules.replace, rules.max_buffer);
  return std::make_unique<StreamingRewrite>(rules.replace);
}

class BodyRewriteFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit BodyRewriteFilter(const BodyRewriteConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    if (c_.request.enabled && c_.request.typeListed(ctx.request->headers))
      ctx.transformRequestBody(makeTransform(c_.request));
    return api::FilterStatus::Continue;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    if (c_.response.enabled && ctx.response && c_.response.typeListed(ctx.response->headers))
      ctx.transformResponseBody(makeTransform(c_.response));
    return api::FilterStatus::Continue;
  }

 private:
  const BodyRewriteConfig& c_;
};

void readRules(config::ObjectReader& parent, std::string_view key, config::Diagnostics& diag,
               RewriteRules& rules) {
  const nlohmann::json* node = parent.get(key);
  if (!node) return;
  rules.enabled = true;
  config::ObjectReader r(*node, parent.childPath(key), diag);
  if (const nlohmann::json* list = r.get("replace")) {
    if (!list->is_array()) {
      diag.add(r.childPath("replace"), "expected a list of {from, to}");
    } else {
      for (std::size_t i = 0; i < list->size(); ++i) {
        config::ObjectReader item((*list)[i], config::indexPath(r.childPath("replace"), i), diag);
        std::string from, to;
        item.string("from", from, true);
        item.string("to", to, true);
        item.finish();
        if (from.empty() && item.has("from")) diag.add(item.childPath("from"), "must not be empty");
        rules.replace.emplace_back(std::move(from), std::move(to));
      }
    }
  }
  std::string mode = "streaming";
  r.string("mode", mode);
  r.size("max_buffer", rules.max_buffer);
  r.stringList("content_types", rules.content_types);
  r.finish();
  if (mode == "buffered") {
    rules.buffered = true;
  } else if (mode != "streaming") {
    diag.add(r.childPath("mode"), "expected streaming or buffered");
  }
}

}  // namespace

api::FilterType bodyRewriteFilterType() {
  return {
      "body-rewrite", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        BodyRewriteConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        readRules(r, "request", b.diag, c.request);
        readRules(r, "response", b.diag, c.response);
        r.finish();
        if (!c.request.enabled && !c.response.enabled)
          b.diag.add(b.path, "needs request or response (or both)");
        return std::make_shared<ConfigFactory<BodyRewriteFilter, BodyRewriteConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
