#include "filters/ext_auth/ext_auth_filter.h"

#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct ExtAuthConfig {
  // Where the check goes: a URL, or a configured upstream and a path. The original path and
  // query are appended to either (path_prefix style).
  std::string url;
  std::string upstream;
  std::string path = "/";
  std::string ca_file;
  std::vector<std::string> request_headers;   // copied from the request to the call
  std::vector<std::string> upstream_headers;  // copied from a 2xx answer to the upstream request
  std::vector<std::string> client_headers;    // copied from a refusal to the client
  std::chrono::milliseconds timeout{1000};
  bool fail_open = false;
};

bool listed(const std::vector<std::string>& names, std::string_view name) {
  for (const auto& n : names)
    if (http::equalsIgnoreCase(n, name)) return true;
  return false;
}

// base + target, with one slash between them.
std::string appendTarget(const std::string& base, const std::string& target) {
  if (target.empty()) return base + "/";
  if (!base.empty() && base.back() == '/' && target.front() == '/') return base + target.substr(1);
  return base + target;
}

class ExtAuthFilter final : public api::Filter {
 public:
  explicit ExtAuthFilter(const ExtAuthConfig& c) : c_(c) {}
  bool authenticates() const override { return true; }

  api::FilterStatus onRequestHeaders(api::RequestContext&) override {
    return api::FilterStatus::Async;
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    if (!ctx.calls) {  // a filter run alone (unit tests): the service cannot be reached
      done(decide(ctx, api::CallResponse{}));
      return;
    }
    const auto& req = *ctx.request;
    api::CallRequest call;
    call.method = req.method;
    if (c_.upstream.empty()) {
      call.url = appendTarget(c_.url, req.target);
      call.ca_file = c_.ca_file;
    } else {
      call.upstream = c_.upstream;
      call.target = appendTarget(c_.path, req.target);
    }
    call.timeout = c_.timeout;
    call.max_response_bytes = 1024 * 1024;
    call.span_name = "ext-auth";
    for (const auto& h : req.headers)
      if (listed(c_.request_headers, h.name)) call.headers.add(h.name, h.value);
    // X-Forwarded-For, -Proto and -Host and X-Request-Id are the call engine's.
    call.headers.add("X-Forwarded-Method", req.method);
    call.headers.add("X-Forwarded-Uri", req.target);
    ctx.calls->start(std::move(call), [this, &ctx, done = std::move(done)](api::CallResponse r) {
      done(decide(ctx, std::move(r)));
    });
  }

 private:
  api::FilterStatus decide(api::RequestContext& ctx, api::CallResponse r) {
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
};

}  // namespace

api::FilterType extAuthFilterType() {
  return {"ext-auth", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            ExtAuthConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            std::string on_failure;
            r.string("url", c.url);
            r.string("upstream", c.upstream);
            r.string("path", c.path);
            r.string("ca", c.ca_file);
            r.stringList("request_headers", c.request_headers);
            r.stringList("upstream_headers", c.upstream_headers);
            r.stringList("client_headers", c.client_headers);
            config::Duration timeout{1000};
            r.duration("timeout", timeout);
            r.string("on_failure", on_failure);
            r.finish();
            if (c.url.empty() == c.upstream.empty()) {
              b.diag.add(b.path, "needs one of url or upstream");
            } else if (!c.url.empty() && c.url.rfind("http://", 0) != 0 &&
                       c.url.rfind("https://", 0) != 0) {
              b.diag.add(r.childPath("url"), "must be an http:// or https:// URL");
            } else if (!c.upstream.empty() && !b.hasUpstream(c.upstream)) {
              b.diag.add(r.childPath("upstream"), "unknown upstream \"" + c.upstream + "\"");
            }
            if (c.path.empty() || c.path.front() != '/')
              b.diag.add(r.childPath("path"), "must start with /");
            if (on_failure == "fail_open") {
              c.fail_open = true;
            } else if (!on_failure.empty() && on_failure != "fail_closed") {
              b.diag.add(r.childPath("on_failure"), "expected fail_closed or fail_open");
            }
            if (c.request_headers.empty()) c.request_headers = {"Authorization", "Cookie"};
            c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
            if (c.url.empty() == c.upstream.empty()) return nullptr;
            return std::make_shared<ConfigFactory<ExtAuthFilter, ExtAuthConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
