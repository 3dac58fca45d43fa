#pragma once
// The developer portal's listener (server.portal): its pages, its JSON API and, when `oidc` is
// set, sign-in with an OpenID Connect provider. Runs on the control thread's loop, never on a
// worker; read at start only.
#include <memory>
#include <string>

#include "api/services.h"
#include "config/model.h"
#include "portal/portal_api.h"

namespace boost::asio {
class io_context;
}

namespace portico::tls {
class ServerContext;
}

namespace portico::portal {

class OidcSignIn;

class PortalSite {
 public:
  // `services` makes the OpenID Connect provider's calls.
  PortalSite(boost::asio::io_context& io, config::PortalConfig config, PortalHooks hooks,
             api::Services& services);
  ~PortalSite();
  // "" once listening, else why not.
  std::string listen(std::shared_ptr<const tls::ServerContext> tls);
  void stop();

 private:
  void handle(const admin::AdminRequest& request,
              const std::function<void(admin::AdminResponse)>& reply);

  config::PortalConfig config_;
  std::function<const store::EntitySet&()> entities_;
  PortalApi api_;
  std::unique_ptr<OidcSignIn> oidc_;
  std::unique_ptr<admin::AdminServer> server_;
};

}  // namespace portico::portal
