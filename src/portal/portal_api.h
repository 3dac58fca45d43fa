#pragma once
// The developer portal's JSON API under /portal/api/ (ADR 0015, docs/portal.md): local accounts,
// sessions with a CSRF token, applications (consumers), their keys (shown once, kept as
// SHA-256) and subscriptions to published APIs under plans. Runs on the control thread, on its
// own listener; every change is an entity write through the Admin API's path (validated,
// stored, published, audited). Sessions and login throttling live in this node's memory.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "config/model.h"
#include "store/entity_set.h"

namespace portico::portal {

struct PortalHooks {
  // Applies entity changes as the Admin API would, for `actor`; `what` names it in the audit.
  std::function<admin::AdminResponse(std::vector<store::Change> changes, const std::string& actor,
                                     const std::string& what)>
      write;
  std::function<const store::EntitySet&()> entities;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<std::string()> utc_now;  // RFC 3339
  // `bytes` random bytes (tests inject their own).
  std::function<std::string(std::size_t bytes)> random;
  // crypt(3) with a fresh yescrypt salt, and a check against a stored hash.
  std::function<std::string(const std::string& password)> hash_password;
  std::function<bool(const std::string& password, const std::string& hash)> check_password;
  // An application's use over the last `days` days (filters::UsageBook::report); unset: 501.
  std::function<nlohmann::json(const std::string& application, int days)> usage;
};

class PortalApi {
 public:
  PortalApi(config::PortalConfig config, PortalHooks hooks, bool tls)
      : config_(std::move(config)), hooks_(std::move(hooks)), tls_(tls) {}

  bool handles(const std::string& path) const { return path.rfind("/portal/api/", 0) == 0; }
  // `client_ip`: for login throttling.
  admin::AdminResponse handle(const admin::AdminRequest& request, const std::string& client_ip);

  // After an OpenID Connect sign-in: the account with that email (made when sign-up allows,
  // an invitation claimed, an account linked to `subject`), a new session, 302 to the account
  // page.
  admin::AdminResponse signInWith(const admin::AdminRequest& request, const std::string& email,
                                  const std::string& subject);

  static constexpr int kMaxFailures = 5;  // per IP and per account, within kFailureWindow
  static constexpr std::chrono::minutes kFailureWindow{15};

 private:
  struct Session {
    std::string account;
    std::string csrf;
    std::chrono::steady_clock::time_point seen;
  };
  struct Failures {
    int count = 0;
    std::chrono::steady_clock::time_point first;
  };

  admin::AdminResponse signup(const admin::AdminRequest& request);
  admin::AdminResponse login(const admin::AdminRequest& request, const std::string& client_ip);
  // A new session for `email`: its cookie goes into `response`; returns its CSRF token.
  std::string openSession(const admin::AdminRequest& request, const std::string& email,
                          admin::AdminResponse& response);
  admin::AdminResponse catalogue() const;
  admin::AdminResponse spec(const std::string& api) const;
  admin::AdminResponse apps(const std::string& account) const;
  admin::AdminResponse createApp(const std::string& account, const admin::AdminRequest& request);
  admin::AdminResponse subscribe(const store::Entity& app, const std::string& account,
                                 const admin::AdminRequest& request);
  admin::AdminResponse createKey(const store::Entity& app, const std::string& account);
  admin::AdminResponse revokeKey(const store::Entity& app, const std::string& account,
                                 const std::string& id);
  // The session the cookie names, if it is alive (its idle time restarts); else nullptr.
  Session* session(const admin::AdminRequest& request);
  // The account's application `id` (a consumer it owns), else nullptr.
  const store::Entity* appOf(const std::string& account, const std::string& id) const;
  // Seconds until `key` may try again (0: it may now).
  long throttled(std::map<std::string, Failures>& table, const std::string& key);
  void fail(std::map<std::string, Failures>& table, const std::string& key);
  std::string token(std::size_t bytes);

  config::PortalConfig config_;
  PortalHooks hooks_;
  bool tls_;
  std::map<std::string, Session> sessions_;  // by session id
  std::map<std::string, Failures> by_ip_, by_account_;
  std::string dummy_hash_;  // checked for unknown emails
};

}  // namespace portico::portal
