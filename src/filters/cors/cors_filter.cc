#include "filters/cors/cors_filter.h"

#include <re2/re2.h>

#include "config/reader.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct CorsConfig {
  bool any_origin = false;
  std::vector<std::string> exact;
  std::vector<std::pair<std::string, std::string>> wildcard;  // scheme://, .suffix
  std::vector<std::unique_ptr<re2::RE2>> regex;
  std::string methods = "GET, HEAD, PUT, PATCH, POST, DELETE";
  std::string headers;  // "" = echo Access-Control-Request-Headers
  std::string exposed_headers;
  bool credentials = false;
  std::string max_age;  // seconds, "" = not sent

  bool allows(std::string_view origin) const {
    if (any_origin) return true;
    for (const auto& e : exact)
      if (http::equalsIgnoreCase(e, origin)) return true;
    for (const auto& [scheme, suffix] : wildcard) {
      if (origin.size() > scheme.size() + suffix.size() &&
          origin.substr(0, scheme.size()) == scheme &&
          origin.substr(origin.size() - suffix.size()) == suffix &&
          origin.substr(scheme.size(), origin.size() - scheme.size() - suffix.size()).find('/') ==
              std::string_view::npos)
        return true;
    }
    for (const auto& re : regex)
      if (re2::RE2::FullMatch(re2::StringPiece(origin.data(), origin.size()), *re)) return true;
    return false;
  }
};

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out;
}

class CorsFilter final : public api::Filter {
 public:
  explicit CorsFilter(const CorsConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    const auto& h = ctx.request->headers;
    const std::string* origin = h.find("origin");
    if (!origin) return api::FilterStatus::Continue;
    allowed_ = c_.allows(*origin);
    origin_ = *origin;
    const std::string* request_method = h.find("access-control-request-method");
    if (ctx.request->method != "OPTIONS" || !request_method) return api::FilterStatus::Continue;
    // A preflight: answered here, allowed or not (without the headers, the browser refuses).
    auto& reply = ctx.local_reply;
    reply = api::LocalReply{};
    reply.status = 204;
    addOriginHeaders(reply.headers);
    if (allowed_) {
      reply.headers.add("Access-Control-Allow-Methods", c_.methods);
      const std::string* asked = h.find("access-control-request-headers");
      if (!c_.headers.empty()) {
        reply.headers.add("Access-Control-Allow-Headers", c_.headers);
      } else if (asked) {
        reply.headers.add("Access-Control-Allow-Headers", *asked);
      }
      if (!c_.max_age.empty()) reply.headers.add("Access-Control-Max-Age", c_.max_age);
    }
    preflight_ = true;
    return api::FilterStatus::Reply;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    if (preflight_ || origin_.empty()) {
      if (origin_.empty() && !c_.any_origin) addVary(ctx.response->headers);
      return api::FilterStatus::Continue;
    }
    auto& h = ctx.response->headers;
    addOriginHeaders(h);
    if (allowed_ && !c_.exposed_headers.empty())
      h.set("Access-Control-Expose-Headers", c_.exposed_headers);
    return api::FilterStatus::Continue;
  }

 private:
  void addOriginHeaders(http::HeaderList& h) {
    if (allowed_) {
      // "*" cannot go with credentials: then the origin itself is echoed.
      const bool star = c_.any_origin && !c_.credentials;
      h.set("Access-Control-Allow-Origin", star ? std::string("*") : origin_);
      if (c_.credentials) h.set("Access-Control-Allow-Credentials", "true");
    }
    if (!c_.any_origin || c_.credentials) addVary(h);
  }

  static void addVary(http::HeaderList& h) {
    if (const std::string* vary = h.find("vary")) {
      bool has = false;
      http::forEachToken(*vary, [&](std::string_view t) {
        has |= http::equalsIgnoreCase(t, "origin") || t == "*";
      });
      if (!has) h.set("Vary", *vary + ", Origin");
    } else {
      h.add("Vary", "Origin");
    }
  }

  const CorsConfig& c_;
  std::string origin_;
  bool allowed_ = false;
  bool preflight_ = false;
};

}  // namespace

api::FilterType corsFilterType() {
  return {"cors", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            CorsConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            std::vector<std::string> origins, regexes, methods, headers, exposed;
            r.stringList("origins", origins);
            r.stringList("origins_regex", regexes);
            r.stringList("methods", methods);
            r.stringList("headers", headers);
            r.stringList("exposed_headers", exposed);
            r.boolean("credentials", c.credentials);
            config::Duration max_age{0};
            r.duration("max_age", max_age);
            r.finish();
            for (std::size_t i = 0; i < origins.size(); ++i) {
              const std::string& o = origins[i];
              const auto star = o.find("://*.");
              if (o == "*") {
                c.any_origin = true;
              } else if (star != std::string::npos) {
                c.wildcard.emplace_back(o.substr(0, star + 3), o.substr(star + 4));
              } else if (o.find("://") != std::string::npos && o.find('*') == std::string::npos) {
                c.exact.push_back(o);
              } else {
                b.diag.add(config::indexPath(r.childPath("origins"), i),
                           "expected \"*\", scheme://host[:port] or scheme://*.domain");
              }
            }
            for (std::size_t i = 0; i < regexes.size(); ++i) {
              auto re = std::make_unique<re2::RE2>(regexes[i], re2::RE2::Quiet);
              if (!re->ok()) {
                b.diag.add(config::indexPath(r.childPath("origins_regex"), i),
                           "invalid regex: " + re->error());
              } else {
                c.regex.push_back(std::move(re));
              }
            }
            if (origins.empty() && regexes.empty())
              b.diag.add(b.path, "give origins (or origins_regex)");
            if (!methods.empty()) c.methods = joinList(methods);
            c.headers = joinList(headers);
            c.exposed_headers = joinList(exposed);
            if (max_age.count() > 0)
              c.max_age =
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(max_age).count());
            return std::make_shared<ConfigFactory<CorsFilter, CorsConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
