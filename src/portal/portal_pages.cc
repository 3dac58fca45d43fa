#include "portal/portal_pages.h"

#include <nlohmann/json.hpp>

#include "admin/admin_reply.h"

namespace portico::portal {

using nlohmann::json;
using store::Kind;

namespace {

constexpr std::string_view kCss = R"css(
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f7f8fa; }
header { display: flex; justify-content: space-between; align-items: center; padding: .8rem 1.2rem;
  background: #1d2330; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.2rem; }
ul.apis { list-style: none; padding: 0; }
ul.apis li, section.op, .app { background: #fff; border: 1px solid #dde1e8; border-radius: 6px;
  padding: .8rem 1rem; margin: .6rem 0; }
.badge { background: #fff3cd; color: #6b4e00; border-radius: 4px; padding: 0 .4rem; font-size: .85rem; }
.method { font-weight: 700; margin-right: .5rem; }
code, pre { background: #eef1f5; border-radius: 4px; padding: .1rem .3rem; overflow-x: auto; }
pre { padding: .6rem; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .2rem .4rem; }
form { margin: .6rem 0; display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
input, select, button { font: inherit; padding: .3rem .5rem; }
.message { min-height: 1.5rem; overflow-wrap: anywhere; }
.app p, pre { overflow-wrap: anywhere; }
)css";

constexpr std::string_view kScript = R"js(
'use strict';
const $ = (sel) => document.querySelector(sel);
let csrf = sessionStorage.getItem('portico-csrf');

async function call(method, path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const res = await fetch('/portal/api' + path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  return { status: res.status, data };
}

function say(text) { $('#message').textContent = text; }

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;  // text, never markup
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function showApps() {
  const { status, data } = await call('GET', '/apps');
  $('#signed-in').hidden = status !== 200;
  $('#signed-out').hidden = status === 200;
  if (status !== 200) return;
  const catalogue = (await call('GET', '/apis')).data.data || [];
  const list = $('#apps');
  list.replaceChildren();
  for (const app of data.data) {
    const box = el('div', undefined, { class: 'app', 'data-app': app.id });
    box.append(el('h3', app.name));
    for (const s of app.subscriptions)
      box.append(el('p', `${s.api} under ${s.plan}: ${s.state}`, { class: 'subscription' }));
    const sub = el('form', undefined, { class: 'subscribe' });
    const choice = el('select', undefined, { name: 'choice' });
    for (const api of catalogue)
      for (const plan of api.plans)
        choice.append(el('option', `${api.name} — ${plan.name}`, { value: `${api.name}\n${plan.name}` }));
    sub.append(choice, el('button', 'Subscribe', { type: 'submit' }));
    sub.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const [api, plan] = choice.value.split('\n');
      const r = await call('POST', `/apps/${app.id}/subscriptions`, { api, plan });
      say(r.status === 201 ? `Subscribed: ${r.data.state}` : r.data.error);
      showApps();
    });
    box.append(sub);
    for (const k of app.keys) {
      const row = el('p', `Key ${k.id} (${k.created_at}) `, { class: 'key' });
      const revoke = el('button', 'Revoke', { type: 'button' });
      revoke.addEventListener('click', async () => {
        await call('DELETE', `/apps/${app.id}/keys/${k.id}`);
        showApps();
      });
      row.append(revoke);
      box.append(row);
    }
    const make = el('button', 'New key', { type: 'button', class: 'new-key' });
    make.addEventListener('click', async () => {
      const r = await call('POST', `/apps/${app.id}/keys`);
      await showApps();
      say(r.status === 201 ? `Your new key (shown once): ${r.data.key}` : r.data.error);
    });
    box.append(make);
    box.append(await usageOf(app.id));
    list.append(box);
  }
}

// The last 7 days per API, and the quota left, as a table of text.
async function usageOf(id) {
  const { status, data } = await call('GET', `/apps/${id}/usage?days=7`);
  const part = el('div', undefined, { class: 'usage' });
  if (status !== 200) return part;
  for (const q of data.quota || [])
    part.append(el('p', `Quota left on ${q.api}: ${q.remaining} of ${q.limit}` +
      (q.resets_at ? ` until ${q.resets_at}` : ''), { class: 'quota' }));
  if (!data.data.length) {
    part.append(el('p', 'No calls in the last 7 days.'));
    return part;
  }
  const table = el('table');
  const head = el('tr');
  for (const h of ['day', 'api', 'requests', '4xx', '5xx', 'p95 ms']) head.append(el('th', h));
  table.append(head);
  for (const d of data.data) {
    const row = el('tr');
    for (const v of [d.day, d.api, d.requests, d.errors_4xx, d.errors_5xx, d.p95_ms])
      row.append(el('td', String(v)));
    table.append(row);
  }
  part.append(el('h4', 'Usage, last 7 days'), table);
  return part;
}

for (const [form, path] of [['#signup', '/signup'], ['#login', '/login']]) {
  $(form)?.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const r = await call('POST', path, { email: f.email.value, password: f.password.value });
    if (path === '/login' && r.status === 200) {
      csrf = r.data.csrf_token;
      sessionStorage.setItem('portico-csrf', csrf);
      say(`Signed in as ${r.data.email}`);
      showApps();
    } else {
      say(r.status === 201 ? 'Account created: sign in' : r.data.error);
    }
  });
}
$('#create-app')?.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await call('POST', '/apps', { name: ev.target.name.value });
  say(r.status === 201 ? 'Application created' : r.data.error);
  showApps();
});
$('#logout')?.addEventListener('click', async () => {
  await call('POST', '/logout');
  sessionStorage.removeItem('portico-csrf');
  csrf = null;
  showApps();
});
// After a sign-in the page did not make (OpenID Connect), the session gives its token.
async function start() {
  if (!csrf) {
    const r = await call('GET', '/session');
    if (!r.data.signed_in) return;
    csrf = r.data.csrf_token;
    sessionStorage.setItem('portico-csrf', csrf);
    say(`Signed in as ${r.data.email}`);
  }
  showApps();
}
if ($('#apps')) start();
)js";

admin::AdminResponse html(int status, std::string body) {
  admin::AdminResponse r{status, "text/html; charset=utf-8", std::move(body), {}};
  r.headers.emplace_back("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

std::string layout(const config::PortalConfig& config, const std::string& title,
                   const std::string& main) {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>" +
         escapeHtml(title) +
         "</title><link rel=\"stylesheet\" href=\"/portal/static/portal.css\"></head><body>"
         "<header><a href=\"/portal/\">" +
         escapeHtml(config.title) +
         "</a><a href=\"/portal/account\">My applications</a></header><main>" + main +
         "</main><script src=\"/portal/static/portal.js\"></script></body></html>";
}

bool listed(const store::Entity& api) {
  const std::string state = api.body.value("state", "published");
  return state == "published" || state == "deprecated";
}

std::string stateBadge(const store::Entity& api) {
  if (api.body.value("state", "published") != "deprecated") return "";
  std::string text = "deprecated";
  if (api.body.contains("sunset") && api.body["sunset"].is_string())
    text += ", sunset " + api.body["sunset"].get<std::string>();
  return " <span class=\"badge\">" + escapeHtml(text) + "</span>";
}

std::string catalogue(const config::PortalConfig& config, const store::EntitySet& set) {
  std::string out = "<h1>APIs</h1><ul class=\"apis\">";
  for (const auto& api : set.list(Kind::Apis)) {
    if (!listed(api)) continue;
    out += "<li data-api=\"" + escapeHtml(api.name) + "\"><a href=\"/portal/apis/" +
           escapeHtml(api.name) + "\">" + escapeHtml(api.name) + "</a> <span>" +
           escapeHtml(api.body.value("version", "")) + "</span>" + stateBadge(api) + "<p><code>" +
           escapeHtml(config.gateway_url + api.body.value("base_path", "/")) + "</code></p></li>";
  }
  return out + "</ul>";
}

std::string apiPage(const config::PortalConfig& config, const store::EntitySet& set,
                    const store::Entity& api) {
  std::string base = api.body.value("base_path", "/");
  if (!base.empty() && base.back() == '/') base.pop_back();
  // The header the API's routes read the key from: their own key-auth's, else the default the
  // gateway puts there.
  std::string header = "apikey";
  for (const auto& route : set.list(Kind::Routes)) {
    if (route.body.value("api", "") != api.name) continue;
    for (const auto& plugin : route.body.value("plugins", json::array()))
      if (plugin.value("name", "") == "key-auth")
        header = plugin.value("config", json::object()).value("header", header);
  }
  std::string out = "<h1>" + escapeHtml(api.name) + " <span>" +
                    escapeHtml(api.body.value("version", "")) + "</span>" + stateBadge(api) +
                    "</h1><h2>Authentication</h2><p>Send your application's key in the <code>" +
                    escapeHtml(header) + "</code> header.</p>";
  out += "<h2>Plans</h2><ul>";
  for (const auto& plan : set.list(Kind::Plans)) {
    const auto apis = plan.body.value("apis", json::array());
    if (std::find(apis.begin(), apis.end(), json(api.name)) == apis.end()) continue;
    std::string terms;
    for (const auto& l : plan.body.value("limits", json::array()))
      terms += (terms.empty() ? "" : ", ") + std::to_string(l.value("requests", 0)) + " per " +
               l.value("per", "");
    if (plan.body.contains("quota"))
      terms += (terms.empty() ? "" : ", ") +
               std::to_string(plan.body["quota"].value("requests", 0)) + " per " +
               plan.body["quota"].value("per", "");
    out += "<li data-plan=\"" + escapeHtml(plan.name) + "\">" + escapeHtml(plan.name) + ": " +
           escapeHtml(terms.empty() ? "no limits" : terms) +
           (plan.body.value("approval", "auto") == "manual" ? " (approval needed)" : "") + "</li>";
  }
  out += "</ul><h2>Operations</h2>";
  const auto spec = api.body.value("openapi", json::object());
  const auto paths = spec.value("paths", json::object());
  if (!paths.is_object() || paths.empty()) out += "<p>No description published.</p>";
  static const char* kMethods[] = {"get", "put", "post", "delete", "patch", "head", "options"};
  for (auto it = paths.begin(); paths.is_object() && it != paths.end(); ++it) {
    if (!it.value().is_object()) continue;
    for (const char* method : kMethods) {
      const auto op = it.value().find(method);
      if (op == it.value().end() || !op->is_object()) continue;
      std::string upper(method);
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out += "<section class=\"op\" data-op=\"" + escapeHtml(upper + " " + it.key()) +
             "\"><h3><span class=\"method\">" + upper + "</span><code>" + escapeHtml(it.key()) +
             "</code></h3>";
      if (const auto s = op->value("summary", ""); !s.empty())
        out += "<p>" + escapeHtml(s) + "</p>";
      std::string rows;
      for (const auto& p : op->value("parameters", json::array())) {
        if (!p.is_object()) continue;
        rows += "<tr><td><code>" + escapeHtml(p.value("name", "")) + "</code></td><td>" +
                escapeHtml(p.value("in", "")) + "</td><td>" +
                (p.value("required", false) ? "required" : "optional") + "</td><td>" +
                escapeHtml(p.value("schema", json::object()).value("type", "")) + "</td></tr>";
      }
      if (!rows.empty())
        out += "<table><tr><th>parameter</th><th>in</th><th></th><th>type</th></tr>" + rows +
               "</table>";
      out += "<pre>curl -X " + upper + " -H '" + escapeHtml(header) + ": YOUR_KEY' '" +
             escapeHtml(config.gateway_url + base + it.key()) + "'</pre></section>";
    }
  }
  return out;
}

constexpr std::string_view kAccount = R"html(
<h1>My applications</h1>
<p id="message" class="message" aria-live="polite"></p>
<div id="signed-out">
  <h2>Sign in</h2>
  <form id="login"><input name="email" type="email" placeholder="email" required>
    <input name="password" type="password" placeholder="password" required>
    <button type="submit">Sign in</button></form>
  @OIDC@
  <h2>Create an account</h2>
  <form id="signup"><input name="email" type="email" placeholder="email" required>
    <input name="password" type="password" placeholder="password (12 characters or more)"
      minlength="12" required><button type="submit">Sign up</button></form>
</div>
<div id="signed-in" hidden>
  <form id="create-app"><input name="name" placeholder="application name" required>
    <button type="submit">Create application</button>
    <button id="logout" type="button">Sign out</button></form>
  <div id="apps"></div>
</div>
)html";

}  // namespace

std::string escapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

admin::AdminResponse portalPage(const std::string& path, const config::PortalConfig& config,
                                const store::EntitySet& entities) {
  if (path == "/portal" || path == "/") return {301, "text/plain", "", {{"Location", "/portal/"}}};
  if (path == "/favicon.ico") return {204, "image/x-icon", "", {}};  // none; not an error
  if (path == "/portal/")
    return html(200, layout(config, config.title, catalogue(config, entities)));
  if (path == "/portal/account") {
    std::string page(kAccount);
    page.replace(page.find("@OIDC@"), 6,
                 config.oidc ? "<p><a id=\"oidc-login\" href=\"/portal/oidc/login\">Sign in with " +
                                   escapeHtml(config.oidc->issuer) + "</a></p>"
                             : "");
    return html(200, layout(config, "My applications", std::move(page)));
  }
  if (path == "/portal/static/portal.css") {
    auto r = html(200, std::string(kCss));
    r.content_type = "text/css; charset=utf-8";
    return r;
  }
  if (path == "/portal/static/portal.js") {
    auto r = html(200, std::string(kScript));
    r.content_type = "text/javascript; charset=utf-8";
    return r;
  }
  constexpr std::string_view kApis = "/portal/apis/";
  if (path.rfind(kApis, 0) == 0) {
    const store::Entity* api = entities.find(Kind::Apis, path.substr(kApis.size()));
    if (api && listed(*api))
      return html(200, layout(config, api->name, apiPage(config, entities, *api)));
  }
  return html(404, layout(config, "Not found", "<h1>Not found</h1>"));
}

}  // namespace portico::portal
