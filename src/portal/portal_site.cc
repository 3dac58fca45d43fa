#include "portal/portal_site.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "admin/admin_reply.h"
#include "portal/oidc_sign_in.h"
#include "portal/portal_pages.h"

namespace portico::portal {

PortalSite::PortalSite(boost::asio::io_context& io, config::PortalConfig config, PortalHooks hooks,
                       api::Services& services)
    : config_(std::move(config)),
      entities_(hooks.entities),
      api_(config_, hooks, config_.tls.has_value()) {
  if (config_.oidc) {
    OidcSignIn::Hooks oidc_hooks;
    oidc_hooks.post = [&io](std::function<void()> job) { boost::asio::post(io, std::move(job)); };
    oidc_hooks.random = hooks.random;
    oidc_hooks.now = hooks.now;
    oidc_hooks.unix_now = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    oidc_ = std::make_unique<OidcSignIn>(*config_.oidc, services, std::move(oidc_hooks),
                                         config_.tls.has_value());
  }
  server_ = std::make_unique<admin::AdminServer>(
      io, admin::AsyncAdminHandler(
              [this](const admin::AdminRequest& r,
                     std::function<void(admin::AdminResponse)> reply) { handle(r, reply); }));
}

PortalSite::~PortalSite() = default;

std::string PortalSite::listen(std::shared_ptr<const tls::ServerContext> tls) {
  if (auto ok = server_->listen(config_.listen, std::move(tls)); !ok) return ok.error().message;
  return "";
}

void PortalSite::stop() {
  server_->stop();
}

void PortalSite::handle(const admin::AdminRequest& r,
                        const std::function<void(admin::AdminResponse)>& reply) {
  if (api_.handles(r.path)) return reply(api_.handle(r, r.client_ip));
  if (r.path == "/portal/oidc/login" || r.path == "/portal/oidc/callback") {
    if (!oidc_) return reply(admin::failure(404, "sign-in with OpenID Connect is not set up"));
    if (r.method != "GET") return reply(admin::notAllowed("GET"));
    if (r.path == "/portal/oidc/login") return reply(oidc_->begin(r));
    return oidc_->finish(
        r, [this, r, reply](std::optional<OidcIdentity> who, admin::AdminResponse refusal) {
          reply(who ? api_.signInWith(r, who->email, who->subject) : std::move(refusal));
        });
  }
  if (r.method != "GET" && r.method != "HEAD") return reply(admin::notAllowed("GET, HEAD"));
  reply(portalPage(r.path, config_, entities_()));
}

}  // namespace portico::portal
