#include "portal/portal_api.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include "admin/admin_reply.h"
#include "core/json_field.h"
#include "core/sha256.h"
#include "http/url.h"
#include "portal/web.h"

namespace portico::portal {

using admin::AdminRequest;
using admin::AdminResponse;
using admin::answer;
using admin::failure;
using nlohmann::json;
using store::Kind;

namespace {

constexpr std::string_view kCookie = "portico_portal";
constexpr const char* kAccountLabel = "portal-account";
constexpr const char* kAppLabel = "portal-app";
constexpr std::size_t kMaxKeys = 2;  // two, so a rotation has no gap

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  for (std::size_t start = 0; start < path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

bool sameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<json> objectBody(const AdminRequest& request) {
  auto body = json::parse(request.body, nullptr, false);
  if (!body.is_object()) return std::nullopt;
  return body;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool plausibleEmail(const std::string& email) {
  const auto at = email.find('@');
  return email.size() <= 254 && at != std::string::npos && at > 0 && at + 1 < email.size() &&
         email.find('@', at + 1) == std::string::npos &&
         std::none_of(email.begin(), email.end(), [](unsigned char c) {
           return c <= ' ' || c == '/' || c == '"' || c == '<' || c == '>' || c >= 0x7f;
         });
}

std::string label(const store::Entity& e, const char* key) {
  const auto labels = e.body.find("labels");
  if (labels == e.body.end() || !labels->is_object()) return "";
  return labels->value(key, "");
}

}  // namespace

AdminResponse PortalApi::handle(const AdminRequest& request, const std::string& client_ip) {
  const auto parts = split(request.path.substr(std::string_view("/portal/api/").size()));
  const std::string& method = request.method;
  const bool read = method == "GET" || method == "HEAD";
  if (parts.size() == 1 && parts[0] == "signup" && method == "POST") return signup(request);
  if (parts.size() == 1 && parts[0] == "login" && method == "POST")
    return login(request, client_ip);
  if (!parts.empty() && parts[0] == "apis" && read) {
    if (parts.size() == 1) return catalogue();
    if (parts.size() == 3 && parts[2] == "openapi") return spec(parts[1]);
  }
  Session* s = session(request);
  // The page's script asks for the CSRF token after a sign-in that was not its own (OpenID
  // Connect): readable only by this origin, like the answer of /login. Signed out is no error.
  if (parts.size() == 1 && parts[0] == "session" && read)
    return answer(200, s ? json{{"signed_in", true}, {"csrf_token", s->csrf}, {"email", s->account}}
                         : json{{"signed_in", false}});
  if (!s) return failure(401, "sign in first");
  // Every change needs the token the session gave (a form on another site cannot send it).
  if (!read) {
    const std::string* csrf = request.header("x-csrf-token");
    if (!csrf || !sameSecret(*csrf, s->csrf))
      return failure(403, "X-CSRF-Token is missing or wrong");
  }
  const std::string account = s->account;
  if (parts.size() == 1 && parts[0] == "logout" && method == "POST") {
    sessions_.erase(cookieValue(request, kCookie));
    AdminResponse r = answer(200, {{"signed_out", true}});
    r.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=; Path=/portal; Max-Age=0");
    return r;
  }
  if (!parts.empty() && parts[0] == "apps") {
    if (parts.size() == 1) {
      if (read) return apps(account);
      if (method == "POST") return createApp(account, request);
      return admin::notAllowed("GET, POST");
    }
    const store::Entity* app = appOf(account, parts[1]);
    if (!app) return failure(404, "no application " + parts[1]);  // another's looks the same
    if (parts.size() == 3 && parts[2] == "subscriptions" && method == "POST")
      return subscribe(*app, account, request);
    if (parts.size() == 3 && parts[2] == "keys" && method == "POST")
      return createKey(*app, account);
    if (parts.size() == 4 && parts[2] == "keys" && method == "DELETE")
      return revokeKey(*app, account, parts[3]);
    if (parts.size() == 3 && parts[2] == "usage" && read) {
      if (!hooks_.usage) return failure(501, "usage is not kept here");
      const auto days = http::findQueryParam(request.query, "days");
      const long n = days.found ? std::strtol(std::string(days.value).c_str(), nullptr, 10) : 7;
      if (n < 1 || n > 31) return failure(400, "days: from 1 to 31");
      return answer(200, hooks_.usage(app->name, static_cast<int>(n)));
    }
  }
  return failure(404, "not found: " + request.path);
}

AdminResponse PortalApi::signup(const AdminRequest& request) {
  if (config_.signup == config::PortalConfig::Signup::Closed)
    return failure(403, "sign-up is closed");
  const auto body = objectBody(request);
  if (!body) return failure(400, "expected a JSON object {email, password}");
  const std::string email = lower(stringField(*body, "email"));
  const std::string password = stringField(*body, "password");
  if (!plausibleEmail(email)) return failure(400, "email: not an email address");
  if (password.size() < 12) return failure(400, "password: at least 12 characters");
  if (password.size() > 1024) return failure(400, "password: at most 1024 characters");
  // An operator's invitation (`accounts` entry with `invited: true`) is claimed by signing up.
  const store::Entity* existing = hooks_.entities().find(Kind::Accounts, email);
  const bool invited = existing && existing->body.value("invited", false);
  if (existing && !invited) return failure(409, "an account with this email exists");
  if (!invited && config_.signup == config::PortalConfig::Signup::Invite)
    return failure(403, "sign-up is by invitation only");
  const AdminResponse r =
      hooks_.write({{Kind::Accounts, email,
                     json{{"name", email}, {"password_hash", hooks_.hash_password(password)}}}},
                   "portal", "/portal/api/signup");
  if (r.status >= 300) return r;
  return answer(201, {{"email", email}});
}

AdminResponse PortalApi::login(const AdminRequest& request, const std::string& client_ip) {
  const auto body = objectBody(request);
  if (!body) return failure(400, "expected a JSON object {email, password}");
  const std::string email = lower(stringField(*body, "email"));
  const std::string password = stringField(*body, "password");
  const long wait = std::max(throttled(by_ip_, client_ip), throttled(by_account_, email));
  if (wait > 0) {
    AdminResponse r = failure(429, "too many failed sign-ins: try again later");
    r.headers.emplace_back("Retry-After", std::to_string(wait));
    return r;
  }
  const store::Entity* account = hooks_.entities().find(Kind::Accounts, email);
  // An unknown email costs the same hash as a known one, and answers the same.
  if (dummy_hash_.empty()) dummy_hash_ = hooks_.hash_password(token(16));
  // So does an account without a password (an invitation, one that signs in with OpenID
  // Connect).
  const std::string stored = account ? account->body.value("password_hash", "") : "";
  if (!hooks_.check_password(password, stored.empty() ? dummy_hash_ : stored) || stored.empty()) {
    fail(by_ip_, client_ip);
    fail(by_account_, email);
    return failure(401, "invalid email or password");
  }
  by_account_.erase(email);
  AdminResponse r;
  const std::string csrf = openSession(request, email, r);
  r.status = 200;
  r.body = json{{"csrf_token", csrf}, {"email", email}}.dump();
  return r;
}

std::string PortalApi::openSession(const AdminRequest& request, const std::string& email,
                                   AdminResponse& response) {
  // A new session id at every sign-in (never one the client brought).
  if (const std::string old = cookieValue(request, kCookie); !old.empty()) sessions_.erase(old);
  const std::string id = token(16);
  const std::string csrf = token(16);
  const auto now = hooks_.now();
  if (sessions_.size() >= 10000)  // abandoned sessions go when new ones come
    std::erase_if(sessions_,
                  [&](const auto& e) { return now - e.second.seen > config_.session_idle; });
  sessions_[id] = {email, csrf, now};
  response.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + id +
                                                  "; Path=/portal; HttpOnly; SameSite=Lax" +
                                                  (tls_ ? "; Secure" : ""));
  return csrf;
}

AdminResponse PortalApi::signInWith(const AdminRequest& request, const std::string& provider_email,
                                    const std::string& subject) {
  const std::string email = lower(provider_email);
  if (!plausibleEmail(email)) return failure(403, "the identity provider gave no usable email");
  const store::Entity* existing = hooks_.entities().find(Kind::Accounts, email);
  json body;
  if (existing) {
    const std::string linked = existing->body.value("oidc_subject", "");
    if (!linked.empty() && linked != subject)
      return failure(403, "account " + email + " is linked to another identity");
    if (linked.empty()) {  // link it (an invitation is claimed: it gets no password)
      body = existing->body;
      store::stripMetadata(body);
      body.erase("invited");
      body["oidc_subject"] = subject;
    }
  } else if (config_.signup == config::PortalConfig::Signup::Open) {
    body = {{"name", email}, {"oidc_subject", subject}};
  } else {
    return failure(403, config_.signup == config::PortalConfig::Signup::Closed
                            ? "sign-up is closed"
                            : "sign-up is by invitation only");
  }
  if (!body.is_null()) {
    const AdminResponse w =
        hooks_.write({{Kind::Accounts, email, std::move(body)}}, "portal", "/portal/oidc/callback");
    if (w.status >= 300) return w;
  }
  AdminResponse r = answer(302, {{"email", email}});
  openSession(request, email, r);
  r.headers.emplace_back("Location", "/portal/account");
  return r;
}

AdminResponse PortalApi::catalogue() const {
  const auto& set = hooks_.entities();
  json data = json::array();
  for (const auto& api : set.list(Kind::Apis)) {
    const std::string state = api.body.value("state", "published");
    if (state != "published" && state != "deprecated") continue;
    json plans = json::array();
    for (const auto& plan : set.list(Kind::Plans)) {
      const auto apis = plan.body.value("apis", json::array());
      if (std::find(apis.begin(), apis.end(), json(api.name)) == apis.end()) continue;
      json shown = plan.body;
      shown.erase("labels");
      plans.push_back(std::move(shown));
    }
    json item = {{"name", api.name},
                 {"version", api.body.value("version", "")},
                 {"base_path", api.body.value("base_path", "/")},
                 {"state", state},
                 {"plans", std::move(plans)}};
    if (api.body.contains("sunset")) item["sunset"] = api.body["sunset"];
    if (!config_.gateway_url.empty()) item["gateway_url"] = config_.gateway_url;
    data.push_back(std::move(item));
  }
  return answer(200, {{"title", config_.title}, {"data", std::move(data)}});
}

AdminResponse PortalApi::spec(const std::string& name) const {
  const store::Entity* api = hooks_.entities().find(Kind::Apis, name);
  const std::string state = api ? api->body.value("state", "published") : "";
  if (!api || (state != "published" && state != "deprecated"))
    return failure(404, "no published api " + name);
  const auto it = api->body.find("openapi");
  if (it == api->body.end() || !it->is_object() || it->contains("file"))
    return failure(404, "api " + name + " publishes no spec here");
  return answer(200, *it);
}

AdminResponse PortalApi::apps(const std::string& account) const {
  const auto& set = hooks_.entities();
  json data = json::array();
  for (const auto& c : set.list(Kind::Consumers)) {
    if (label(c, kAccountLabel) != account) continue;
    json keys = json::array();
    const auto creds = c.body.value("credentials", json::object());
    for (const auto& k : creds.value("key-auth", json::array()))
      keys.push_back({{"id", k.value("id", "")}, {"created_at", k.value("created_at", "")}});
    json subs = json::array();
    for (const auto& s : set.list(Kind::Subscriptions))
      if (s.body.value("application", "") == c.name)
        subs.push_back({{"id", s.name},
                        {"api", s.body.value("api", "")},
                        {"plan", s.body.value("plan", "")},
                        {"state", s.body.value("state", "active")}});
    data.push_back({{"id", c.name},
                    {"name", label(c, kAppLabel)},
                    {"keys", std::move(keys)},
                    {"subscriptions", std::move(subs)}});
  }
  return answer(200, {{"data", std::move(data)}});
}

AdminResponse PortalApi::createApp(const std::string& account, const AdminRequest& request) {
  const auto body = objectBody(request);
  const std::string name = body ? stringField(*body, "name") : "";
  if (name.empty() || name.size() > 100) return failure(400, "name: 1 to 100 characters");
  const std::string id = "app-" + token(6);
  const AdminResponse r = hooks_.write(
      {{Kind::Consumers, id,
        json{{"name", id}, {"labels", {{kAccountLabel, account}, {kAppLabel, name}}}}}},
      account, "/portal/api/apps");
  if (r.status >= 300) return r;
  return answer(201, {{"id", id}, {"name", name}});
}

AdminResponse PortalApi::subscribe(const store::Entity& app, const std::string& account,
                                   const AdminRequest& request) {
  const auto body = objectBody(request);
  const std::string api = body ? stringField(*body, "api") : "";
  const std::string plan_name = body ? stringField(*body, "plan") : "";
  const auto& set = hooks_.entities();
  const store::Entity* plan = set.find(Kind::Plans, plan_name);
  if (!plan) return failure(400, "plan: no plan " + plan_name);
  const std::string state = plan->body.value("approval", "auto") == "manual" ? "pending" : "active";
  const std::string id = "sub-" + token(6);
  const AdminResponse r = hooks_.write({{Kind::Subscriptions, id,
                                         json{{"name", id},
                                              {"application", app.name},
                                              {"api", api},
                                              {"plan", plan_name},
                                              {"state", state}}}},
                                       account, "/portal/api/apps/" + app.name + "/subscriptions");
  if (r.status >= 300) return r;  // an unknown api, one the plan does not list, a second one
  return answer(201, {{"id", id}, {"api", api}, {"plan", plan_name}, {"state", state}});
}

AdminResponse PortalApi::createKey(const store::Entity& app, const std::string& account) {
  json body = app.body;
  store::stripMetadata(body);
  auto& keys = body["credentials"]["key-auth"];
  if (!keys.is_array()) keys = json::array();
  if (keys.size() >= kMaxKeys)
    return failure(409, "an application has at most two keys: revoke one first");
  const std::string id = "key-" + token(6);
  const std::string key = "pk_" + token(24);
  keys.push_back({{"id", id}, {"key_sha256", sha256Hex(key)}, {"created_at", hooks_.utc_now()}});
  const AdminResponse r = hooks_.write({{Kind::Consumers, app.name, std::move(body)}}, account,
                                       "/portal/api/apps/" + app.name + "/keys");
  if (r.status >= 300) return r;
  return answer(201, {{"id", id}, {"key", key}});  // the only time it is shown
}

AdminResponse PortalApi::revokeKey(const store::Entity& app, const std::string& account,
                                   const std::string& id) {
  json body = app.body;
  store::stripMetadata(body);
  auto& keys = body["credentials"]["key-auth"];
  const auto before = keys.is_array() ? keys.size() : 0;
  if (keys.is_array())
    keys.erase(std::remove_if(keys.begin(), keys.end(),
                              [&](const json& k) { return k.value("id", "") == id; }),
               keys.end());
  if (!keys.is_array() || keys.size() == before) return failure(404, "no key " + id);
  const AdminResponse r = hooks_.write({{Kind::Consumers, app.name, std::move(body)}}, account,
                                       "/portal/api/apps/" + app.name + "/keys/" + id);
  if (r.status >= 300) return r;
  return answer(200, {{"revoked", id}});
}

PortalApi::Session* PortalApi::session(const AdminRequest& request) {
  const std::string id = cookieValue(request, kCookie);
  const auto it = sessions_.find(id);
  if (id.empty() || it == sessions_.end()) return nullptr;
  const auto now = hooks_.now();
  if (now - it->second.seen > config_.session_idle) {
    sessions_.erase(it);
    return nullptr;
  }
  it->second.seen = now;
  return &it->second;
}

const store::Entity* PortalApi::appOf(const std::string& account, const std::string& id) const {
  const store::Entity* app = hooks_.entities().find(Kind::Consumers, id);
  return app && label(*app, kAccountLabel) == account ? app : nullptr;
}

long PortalApi::throttled(std::map<std::string, Failures>& table, const std::string& key) {
  const auto it = table.find(key);
  if (it == table.end()) return 0;
  const auto elapsed = hooks_.now() - it->second.first;
  if (elapsed >= kFailureWindow) {
    table.erase(it);
    return 0;
  }
  if (it->second.count < kMaxFailures) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(kFailureWindow - elapsed).count() + 1;
}

void PortalApi::fail(std::map<std::string, Failures>& table, const std::string& key) {
  if (table.size() > 100000)  // many sources: forget the ones whose window is over
    std::erase_if(table,
                  [&](const auto& e) { return hooks_.now() - e.second.first >= kFailureWindow; });
  auto& f = table[key];
  if (f.count == 0) f.first = hooks_.now();
  ++f.count;
}

std::string PortalApi::token(std::size_t bytes) {
  return hexToken(hooks_.random(bytes));
}

}  // namespace portico::portal
