#include "filters/headers/headers_filter.h"

#include "config/reader.h"
#include "filters/config_factory.h"
#include "http/token.h"

namespace portico::filters {
namespace {

bool validHeaderValue(std::string_view value) {
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

void readPairs(config::ObjectReader& r, std::string_view key,
               std::vector<std::pair<std::string, std::string>>& out) {
  const nlohmann::json* j = r.get(key);
  if (!j) return;
  auto path = r.childPath(key);
  if (!j->is_object()) {
    r.diagnostics().add(path, "expected a map of header name: value");
    return;
  }
  for (auto it = j->begin(); it != j->end(); ++it) {
    std::string value;
    auto p = config::joinPath(path, it.key());
    if (!http::isToken(it.key())) r.diagnostics().add(p, "invalid header name");
    if (config::readString(it.value(), p, r.diagnostics(), value)) {
      if (!validHeaderValue(value)) r.diagnostics().add(p, "header value has CR, LF or NUL");
      out.emplace_back(it.key(), std::move(value));
    }
  }
}

void readEdits(config::ObjectReader& parent, std::string_view key, HeaderEdits& edits) {
  const nlohmann::json* j = parent.get(key);
  if (!j) return;
  config::ObjectReader r(*j, parent.childPath(key), parent.diagnostics());
  r.stringList("remove", edits.remove);
  readPairs(r, "set", edits.set);
  readPairs(r, "add", edits.add);
  r.finish();
  for (size_t i = 0; i < edits.remove.size(); ++i) {
    if (!http::isToken(edits.remove[i]))
      r.diagnostics().add(config::indexPath(r.childPath("remove"), i), "invalid header name");
  }
}

class HeadersFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;  // config only: one instance serves all
  explicit HeadersFilter(const HeadersConfig& c) : c_(c) {}
  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    c_.request.apply(ctx.request->headers);
    return api::FilterStatus::Continue;
  }
  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    c_.response.apply(ctx.response->headers);
    return api::FilterStatus::Continue;
  }

 private:
  const HeadersConfig& c_;
};

}  // namespace

void HeaderEdits::apply(http::HeaderList& headers) const {
  for (const auto& name : remove) headers.remove(name);
  for (const auto& [name, value] : set) headers.set(name, value);
  for (const auto& [name, value] : add) headers.add(name, value);
}

api::FilterType headersFilterType() {
  return {"headers", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            HeadersConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            readEdits(r, "request", c.request);
            readEdits(r, "response", c.response);
            r.finish();
            return std::make_shared<ConfigFactory<HeadersFilter, HeadersConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
