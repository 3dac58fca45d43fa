#include "filters/body_rewrite/body_rewrite_filter.h"

#include "config/reader.h"
#include "filters/body_rewrite/replacer.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct BodyRewriteConfig {
  Replacements replace;
  bool buffered = false;
  std::uint64_t max_buffer = api::BufferedBodyTransform::kDefaultMaxBuffer;
  std::vector<std::string> content_types;  // prefixes; empty = every response
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

class BodyRewriteFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit BodyRewriteFilter(const BodyRewriteConfig& c) : c_(c) {}

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    if (!ctx.response || !typeListed(*ctx.response)) return api::FilterStatus::Continue;
    if (c_.buffered) {
      ctx.transformResponseBody(std::make_unique<BufferedRewrite>(c_.replace, c_.max_buffer));
    } else {
      ctx.transformResponseBody(std::make_unique<StreamingRewrite>(c_.replace));
    }
    return api::FilterStatus::Continue;
  }

 private:
  bool typeListed(const http::ResponseHead& resp) const {
    if (c_.content_types.empty()) return true;
    const std::string* type = resp.headers.find("content-type");
    if (!type) return false;
    for (const auto& prefix : c_.content_types)
      if (type->size() >= prefix.size() &&
          http::equalsIgnoreCase(std::string_view(*type).substr(0, prefix.size()), prefix))
        return true;
    return false;
  }

  const BodyRewriteConfig& c_;
};

}  // namespace

api::FilterType bodyRewriteFilterType() {
  return {
      "body-rewrite", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        BodyRewriteConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        if (const nlohmann::json* list = r.get("replace")) {
          if (!list->is_array()) {
            b.diag.add(r.childPath("replace"), "expected a list of {from, to}");
          } else {
            for (std::size_t i = 0; i < list->size(); ++i) {
              config::ObjectReader item((*list)[i], config::indexPath(r.childPath("replace"), i),
                                        b.diag);
              std::string from, to;
              item.string("from", from, true);
              item.string("to", to, true);
              item.finish();
              if (from.empty() && item.has("from"))
                b.diag.add(item.childPath("from"), "must not be empty");
              c.replace.emplace_back(std::move(from), std::move(to));
            }
          }
        }
        std::string mode = "streaming";
        r.string("mode", mode);
        r.size("max_buffer", c.max_buffer);
        r.stringList("content_types", c.content_types);
        r.finish();
        if (mode == "buffered") {
          c.buffered = true;
        } else if (mode != "streaming") {
          b.diag.add(r.childPath("mode"), "expected streaming or buffered");
        }
        return std::make_shared<ConfigFactory<BodyRewriteFilter, BodyRewriteConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
