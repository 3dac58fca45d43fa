#pragma once
// Sign-in to the developer portal with an OpenID Connect provider (ADR 0015, docs/portal.md):
// the authorization code flow with PKCE (S256), a `state` bound to the browser by a cookie and
// a `nonce` checked in the ID token. The provider's endpoints and keys come from its discovery
// document (filters::KeySource: fetched at start, fetched again for an unknown key id). Runs on
// the control thread: the answer of the code exchange is posted back to it.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "admin/admin_server.h"
#include "api/services.h"
#include "config/model.h"

namespace portico::filters {
class KeySource;
}

namespace portico::portal {

// Who the provider says signed in: a verified email and the provider's subject.
struct OidcIdentity {
  std::string email;
  std::string subject;
};

class OidcSignIn {
 public:
  struct Hooks {
    std::function<void(std::function<void()>)> post;  // runs a job on the control thread
    std::function<std::string(std::size_t bytes)> random;
    std::function<std::chrono::steady_clock::time_point()> now;
    std::function<std::int64_t()> unix_now;  // seconds, for the ID token's exp and iat
  };
  // `services` fetches the discovery document, the keys and the code exchange.
  OidcSignIn(config::PortalConfig::Oidc config, api::Services& services, Hooks hooks, bool tls);
  ~OidcSignIn();

  // GET /portal/oidc/login: 302 to the provider's authorization endpoint with a fresh state,
  // nonce and PKCE challenge; 503 while the provider's discovery document is not read yet.
  admin::AdminResponse begin(const admin::AdminRequest& request);

  // GET /portal/oidc/callback: exchanges the code and checks the ID token. `done` runs on the
  // control thread with the identity, or without one and the answer that refuses the sign-in.
  using Done = std::function<void(std::optional<OidcIdentity>, admin::AdminResponse refusal)>;
  void finish(const admin::AdminRequest& request, Done done);

  static constexpr std::chrono::minutes kPendingLifetime{10};
  static constexpr std::size_t kMaxPending = 10000;
  static constexpr std::string_view kStateCookie = "portico_oidc";

 private:
  struct Pending {
    std::string verifier;
    std::string nonce;
    std::string redirect_uri;
    std::chrono::steady_clock::time_point started;
  };
  std::string redirectUri(const admin::AdminRequest& request) const;
  // The ID token of a token endpoint answer, checked; `refetched`: the keys were fetched
  // again for its key id already.
  void checkIdToken(const std::string& id_token, const Pending& pending, Done done, bool refetched);
  std::string token(std::size_t bytes);

  config::PortalConfig::Oidc config_;
  api::Services& services_;
  std::shared_ptr<const Hooks> hooks_;  // shared with answers that may come after this is gone
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool tls_;
  std::shared_ptr<filters::KeySource> keys_;
  std::map<std::string, Pending> pending_;  // by state
};

}  // namespace portico::portal
