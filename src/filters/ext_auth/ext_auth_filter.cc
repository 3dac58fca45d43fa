#include "filters/ext_auth/ext_auth_filter.h"

#include "api/services.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/call_span.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct ExtAuthConfig {
  std::string url;  // the original path and query are appended (path_prefix style)
  std::string ca_file;
  std::vector<std::string> request_headers;   // copied from the request to the call
  std::vector<std::string> upstream_headers;  // copied from a 2xx answer to the upstream request
  std::vector<std::string> client_headers;    // copied from a refusal to the client
  std::chrono::milliseconds timeout{1000};
  bool fail_open = false;
  api::Services* services = nullptr;
};

bool listed(const std::vector<std::string>& names, std::string_view name) {
  for (const auto& n : names)
    if (http::equalsIgnoreCase(n, name)) return true;
  return false;
}

class ExtAuthFilter final : public api::Filter {
 public:
  explicit ExtAuthFilter(const ExtAuthConfig& c) : c_(c) {}
  bool authenticates() const override { return true; }

  api::FilterStatus onRequestHeaders(api::RequestContext&) override {
    return api::FilterStatus::Async;
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    const auto& req = *ctx.request;
    client::HttpRequest call;
    call.method = req.method;
    call.url = c_.url + (req.target.empty() ? "/" : req.target);
    if (c_.url.back() == '/' && !req.target.empty() && req.target.front() == '/')
      call.url = c_.url + req.target.substr(1);
    call.timeout = c_.timeout;
    call.ca_file = c_.ca_file;
    for (const auto& h : req.headers)
      if (listed(c_.request_headers, h.name)) call.headers.add(h.name, h.value);
    call.headers.add("X-Forwarded-Method", req.method);
    call.headers.add("X-Forwarded-Uri", req.target);
    call.headers.add("X-Forwarded-Host", req.host);
    call.headers.add("X-Forwarded-For", ctx.client_ip);
    call.headers.add("X-Request-Id", ctx.request_id);
    call_span_.begin(ctx, "ext-auth");
    call_span_.propagate(ctx, call.headers);
    std::string url = call.url;
    c_.services->fetch(std::move(call), [this, &ctx, url = std::move(url),
                                         done = std::move(done)](client::HttpResponse r) {
      if (call_span_.active()) {
        traceHttpCall(call_span_, url, r);
        call_span_.end(ctx, r.status == 0 || r.status >= 500);
      }
      done(decide(ctx, std::move(r)));
    });
  }

 private:
  api::FilterStatus decide(api::RequestContext& ctx, client::HttpResponse r) {
    if (r.status == 0) {  // unreachable or timed out
      if (c_.fail_open) return api::FilterStatus::Continue;
      return unavailable(ctx, "authorization service unavailable");
    }
    if (r.status >= 200 && r.status < 300) {
      auto& headers = ctx.request->headers;
      for (const auto& name : c_.upstream_headers) headers.remove(name);
      for (const auto& h : r.headers)
        if (listed(c_.upstream_headers, h.name)) headers.add(h.name, h.value);
      ctx.authenticated = true;
      return api::FilterStatus::Continue;
    }
    // The service's answer, as it is: status, body and the headers it is allowed to pass.
    ctx.error = "refused by the authorization service";
    ctx.auth_failure =
        r.status == 401 ? api::AuthFailure::InvalidCredentials : api::AuthFailure::Forbidden;
    ctx.local_reply = api::LocalReply{};
    ctx.local_reply.status = r.status;
    for (const auto& h : r.headers) {
      if (http::equalsIgnoreCase(h.name, "content-type") ||
          http::equalsIgnoreCase(h.name, "www-authenticate") || listed(c_.client_headers, h.name))
        ctx.local_reply.headers.add(h.name, h.value);
    }
    ctx.local_reply.body = std::move(r.body);
    return api::FilterStatus::Reply;
  }

  const ExtAuthConfig& c_;
  CallSpan call_span_;
};

}  // namespace

api::FilterType extAuthFilterType() {
  return {"ext-auth", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            ExtAuthConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            std::string on_failure;
            r.string("url", c.url, true);
            r.string("ca", c.ca_file);
            r.stringList("request_headers", c.request_headers);
            r.stringList("upstream_headers", c.upstream_headers);
            r.stringList("client_headers", c.client_headers);
            config::Duration timeout{1000};
            r.duration("timeout", timeout);
            r.string("on_failure", on_failure);
            r.finish();
            if (!c.url.empty() && c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0)
              b.diag.add(r.childPath("url"), "must be an http:// or https:// URL");
            if (on_failure == "fail_open") {
              c.fail_open = true;
            } else if (!on_failure.empty() && on_failure != "fail_closed") {
              b.diag.add(r.childPath("on_failure"), "expected fail_closed or fail_open");
            }
            if (c.request_headers.empty()) c.request_headers = {"Authorization", "Cookie"};
            c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
            c.services = &b.services;
            if (c.url.empty()) return nullptr;
            return std::make_shared<ConfigFactory<ExtAuthFilter, ExtAuthConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
