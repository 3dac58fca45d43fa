// The developer portal's parts of the config (ADR 0015): server.portal, plans, subscriptions,
// accounts.
#include <algorithm>
#include <set>

#include "config/parse_helpers.h"

namespace portico::config {

using nlohmann::json;
using namespace std::chrono_literals;

PortalConfig parsePortal(const json& j, const std::string& path, Diagnostics& d) {
  PortalConfig portal;
  ObjectReader pr(j, path, d);
  pr.string("listen", portal.listen, true);
  if (const json* t = pr.get("tls")) {
    portal.tls = parseTls(*t, pr.childPath("tls"), d);
    portal.tls->offer_h2 = false;  // the portal speaks HTTP/1.1
  }
  pr.string("title", portal.title);
  using Signup = PortalConfig::Signup;
  pr.choice("signup",
            {{"open", Signup::Open}, {"invite", Signup::Invite}, {"closed", Signup::Closed}},
            portal.signup);
  pr.string("gateway_url", portal.gateway_url);
  pr.duration("session_idle", portal.session_idle);
  if (const json* o = pr.get("oidc")) {
    PortalConfig::Oidc oidc;
    ObjectReader r(*o, pr.childPath("oidc"), d);
    r.string("issuer", oidc.issuer, true);
    r.string("client_id", oidc.client_id, true);
    r.string("client_secret", oidc.client_secret);
    r.string("redirect_uri", oidc.redirect_uri);
    r.stringList("scopes", oidc.scopes);
    r.string("ca", oidc.ca);
    for (const auto& [key, url] :
         {std::pair{"issuer", &oidc.issuer}, std::pair{"redirect_uri", &oidc.redirect_uri}})
      if (!url->empty() && url->rfind("https://", 0) != 0 && url->rfind("http://", 0) != 0)
        d.add(r.childPath(key), "must be an http:// or https:// URL");
    if (std::find(oidc.scopes.begin(), oidc.scopes.end(), "openid") == oidc.scopes.end())
      d.add(r.childPath("scopes"), "must include openid");
    r.finish();
    portal.oidc = std::move(oidc);
  }
  pr.finish();
  return portal;
}

PlanConfig parsePlan(const json& j, const std::string& path, Diagnostics& d) {
  PlanConfig plan;
  plan.path = path;
  ObjectReader r(j, path, d);
  r.string("name", plan.name, true);
  r.stringList("apis", plan.apis);
  forEachItem(r, "limits", [&](const json& l, const std::string& lp) {
    PlanConfig::Limit limit;
    ObjectReader lr(l, lp, d);
    lr.number("requests", 1, 1'000'000'000, limit.requests);
    lr.duration("per", limit.per);
    if (!lr.has("requests")) d.add(joinPath(lp, "requests"), "is required");
    if (limit.per.count() <= 0) d.add(joinPath(lp, "per"), "is required and positive");
    lr.finish();
    plan.limits.push_back(limit);
  });
  if (const json* q = r.get("quota")) {
    PlanConfig::Quota quota;
    ObjectReader qr(*q, r.childPath("quota"), d);
    qr.number("requests", 1, 1'000'000'000'000, quota.requests);
    qr.string("per", quota.per, true);
    if (!qr.has("requests")) d.add(qr.childPath("requests"), "is required");
    if (qr.has("per") && quota.per != "hour" && quota.per != "day" && quota.per != "month")
      d.add(qr.childPath("per"), "unknown period \"" + quota.per + "\" (hour, day, month)");
    qr.finish();
    plan.quota = std::move(quota);
  }
  r.choice("approval",
           {{"auto", PlanConfig::Approval::Auto}, {"manual", PlanConfig::Approval::Manual}},
           plan.approval);
  for (const char* key : {"backend", "redis", "on_backend_failure"})
    if (const json* v = r.get(key)) plan.counters[key] = *v;
  readLabels(r, plan.labels);
  r.finish();
  return plan;
}

SubscriptionConfig parseSubscription(const json& j, const std::string& path, Diagnostics& d) {
  SubscriptionConfig sub;
  sub.path = path;
  ObjectReader r(j, path, d);
  r.string("name", sub.name, true);
  r.string("application", sub.application, true);
  r.string("api", sub.api, true);
  r.string("plan", sub.plan, true);
  using State = SubscriptionConfig::State;
  r.choice("state",
           {{"active", State::Active}, {"pending", State::Pending}, {"rejected", State::Rejected}},
           sub.state);
  readLabels(r, sub.labels);
  r.finish();
  return sub;
}

AccountConfig parseAccount(const json& j, const std::string& path, Diagnostics& d) {
  AccountConfig account;
  account.path = path;
  ObjectReader r(j, path, d);
  r.string("name", account.name, true);
  r.boolean("invited", account.invited);
  r.string("oidc_subject", account.oidc_subject);
  // An invitation (made by an operator) has no password until its invitee signs up; an account
  // made by OpenID Connect sign-in has none at all.
  r.string("password_hash", account.password_hash,
           !account.invited && account.oidc_subject.empty());
  if (account.invited && r.has("password_hash"))
    d.add(r.childPath("invited"), "an invitation has no password_hash yet");
  if (account.name.find('@') == std::string::npos)
    d.add(r.childPath("name"), "must be an email address");
  if (r.has("password_hash") && account.password_hash.rfind("$y$", 0) != 0 &&
      account.password_hash.rfind("$2b$", 0) != 0 && account.password_hash.rfind("$6$", 0) != 0)
    d.add(r.childPath("password_hash"), "must be a crypt(3) hash ($y$, $2b$ or $6$)");
  readLabels(r, account.labels);
  r.finish();
  return account;
}

void checkPortalEntities(const Config& c, Diagnostics& d) {
  for (const auto& plan : c.plans)
    for (std::size_t i = 0; i < plan.apis.size(); ++i)
      if (std::none_of(c.apis.begin(), c.apis.end(),
                       [&](const ApiConfig& a) { return a.name == plan.apis[i]; }))
        d.add(indexPath(joinPath(plan.path, "apis"), i), "unknown api \"" + plan.apis[i] + "\"");
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const auto& s : c.subscriptions) {
    if (std::none_of(c.consumers.begin(), c.consumers.end(),
                     [&](const ConsumerConfig& x) { return x.name == s.application; }))
      d.add(joinPath(s.path, "application"), "unknown consumer \"" + s.application + "\"");
    const auto plan = std::find_if(c.plans.begin(), c.plans.end(),
                                   [&](const PlanConfig& p) { return p.name == s.plan; });
    if (plan == c.plans.end())
      d.add(joinPath(s.path, "plan"), "unknown plan \"" + s.plan + "\"");
    else if (std::find(plan->apis.begin(), plan->apis.end(), s.api) == plan->apis.end())
      d.add(joinPath(s.path, "api"), "plan \"" + s.plan + "\" does not list api \"" + s.api + "\"");
    if (!seen.emplace(s.application, s.api).second)
      d.add(s.path,
            "application \"" + s.application + "\" already subscribes to api \"" + s.api + "\"");
  }
}

}  // namespace portico::config
