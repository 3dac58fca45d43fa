"""The developer portal's JSON API (issue 18, ADR 0015) with the real binary: sign up, sign in,
create an application, subscribe it under a plan, create a key, call the API through the
gateway, hit the plan's limit, rotate the key, a manual plan's pending subscription approved by
an operator; sessions, CSRF, throttling and accounts seeing only their own applications."""
import html
import http.client
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

from conftest import base_config, free_port, request, validate, wait_for
from test_admin_api import admin_config, call
from test_token_auth import node_modules, provider  # noqa: F401 (fixtures)

PASSWORD = "correct horse battery"


class Browser:
    """A client of the portal's JSON API that keeps its session cookie and CSRF token."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def send(self, method, path, body=None, csrf=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        try:
            conn.request(method, "/portal/api" + path,
                         body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data or b"null")
        finally:
            conn.close()

    def login(self, email, password=PASSWORD):
        s, h, body = self.send("POST", "/login", {"email": email, "password": password})
        if s == 200:
            self.cookie = h["set-cookie"].split(";")[0]
            self.csrf = body["csrf_token"]
        return s, h, body


def portal_config(tmp_path, upstream):
    cfg = admin_config(tmp_path, upstream.address)
    cfg["upstreams"].append({"name": "items-svc", "targets": [upstream.address]})
    cfg["apis"] = [{"name": "items", "version": "1", "base_path": "/items"}]
    cfg["routes"].append({"name": "items", "match": {"path_prefix": "/items"}, "api": "items",
                          "upstream": "items-svc"})
    cfg["plans"] = [{"name": "free", "apis": ["items"], "limits": [{"requests": 5, "per": "1m"}]},
                    {"name": "gold", "apis": ["items"], "approval": "manual"}]
    cfg["server"]["portal"] = {"listen": f"127.0.0.1:{free_port()}", "title": "Acme APIs",
                               "signup": "open"}
    return cfg


def test_the_whole_journey(portico, upstreams, tmp_path):
    u = upstreams()
    cfg = portal_config(tmp_path, u)
    p = portico(config=cfg)
    web = Browser(int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1]))

    # Sign up and sign in.
    assert web.send("POST", "/signup", {"email": "dev@example.com", "password": "short"})[0] == 400
    assert web.send("POST", "/signup", {"email": "Dev@Example.com", "password": PASSWORD})[0] == 201
    assert web.send("POST", "/signup", {"email": "dev@example.com", "password": PASSWORD})[0] == 409
    s, _, body = web.login("dev@example.com", "wrong password!!")
    assert s == 401 and body["error"] == "invalid email or password"
    assert web.login("nobody@example.com")[2]["error"] == "invalid email or password"
    s, h, body = web.login("dev@example.com")
    assert s == 200 and "HttpOnly" in h["set-cookie"] and "SameSite=Lax" in h["set-cookie"]
    assert len(body["csrf_token"]) == 32

    # The catalogue, with the plans that open each API.
    s, _, cat = web.send("GET", "/apis")
    assert s == 200 and cat["title"] == "Acme APIs"
    assert [a["name"] for a in cat["data"]] == ["items"]
    assert [x["name"] for x in cat["data"][0]["plans"]] == ["free", "gold"]

    # An application, subscribed under the free plan, with a key shown once.
    assert web.send("POST", "/apps", {"name": "mine"}, csrf=False)[0] == 403  # no CSRF token
    s, _, app = web.send("POST", "/apps", {"name": "<script>alert(1)</script>"})
    assert s == 201
    s, _, sub = web.send("POST", f"/apps/{app['id']}/subscriptions", {"api": "items", "plan": "free"})
    assert s == 201 and sub["state"] == "active", sub
    s, _, key1 = web.send("POST", f"/apps/{app['id']}/keys")
    assert s == 201 and key1["key"].startswith("pk_")
    listed = web.send("GET", "/apps")[2]["data"]
    assert listed[0]["name"] == "<script>alert(1)</script>"  # kept as text
    assert listed[0]["keys"][0]["id"] == key1["id"] and "key" not in listed[0]["keys"][0]

    def gateway(key):
        return request(p.port, "GET", "/items/1", {"apikey": key})[0]

    # Through the gateway: the plan's limit is 5 a minute.
    assert [gateway(key1["key"]) for _ in range(3)] == [200, 200, 200]
    # Rotation: a second key, a third is refused, the first revoked stops working at once.
    s, _, key2 = web.send("POST", f"/apps/{app['id']}/keys")
    assert s == 201
    assert web.send("POST", f"/apps/{app['id']}/keys")[0] == 409
    assert web.send("DELETE", f"/apps/{app['id']}/keys/{key1['id']}")[0] == 200
    assert gateway(key1["key"]) == 401
    assert gateway(key2["key"]) == 200
    assert gateway(key2["key"]) == 200
    assert gateway(key2["key"]) == 429  # the sixth in the minute
    # Usage: today's calls of the application (the revoked key's 401 is nobody's).
    # (Counted in the log phase, just after each answer went out.)
    wait_for(lambda: sum(d["requests"] for d in web.send(
        "GET", f"/apps/{app['id']}/usage?days=7")[2]["data"]) >= 6, what="usage counted")
    s, _, usage = web.send("GET", f"/apps/{app['id']}/usage?days=7")
    assert s == 200, usage
    today = usage["data"][0]
    assert (today["api"], today["requests"], today["errors_4xx"], today["errors_5xx"]) == \
        ("items", 6, 1, 0), usage
    assert today["p95_ms"] > 0
    assert web.send("GET", f"/apps/{app['id']}/usage?days=99")[0] == 400

    # A manual plan: pending (403 at the gateway) until an operator approves.
    s, _, app2 = web.send("POST", "/apps", {"name": "second"})
    s, _, sub2 = web.send("POST", f"/apps/{app2['id']}/subscriptions", {"api": "items", "plan": "gold"})
    assert s == 201 and sub2["state"] == "pending"
    k = web.send("POST", f"/apps/{app2['id']}/keys")[2]["key"]
    assert gateway(k) == 403
    s, _, body = call(p, "PATCH", f"/subscriptions/{sub2['id']}", {"state": "active"},
                      content_type="application/merge-patch+json")
    assert s == 200, body
    assert gateway(k) == 200

    # Operators see accounts and applications, never a password or a key.
    s, _, accounts = call(p, "GET", "/accounts")
    assert s == 200 and accounts["data"][0]["name"] == "dev@example.com"
    assert accounts["data"][0]["password_hash"] == "<redacted>"
    consumer = call(p, "GET", f"/consumers/{app['id']}")[2]
    assert key2["key"] not in json.dumps(consumer)

    # Another account sees none of it.
    other = Browser(web.port)
    assert other.send("POST", "/signup", {"email": "eve@example.com", "password": PASSWORD})[0] == 201
    assert other.login("eve@example.com")[0] == 200
    assert other.send("GET", "/apps")[2]["data"] == []
    assert other.send("POST", f"/apps/{app['id']}/keys")[0] == 404

    # Sign out: the session is gone.
    assert web.send("POST", "/logout")[0] == 200
    assert web.send("GET", "/apps")[0] == 401


def test_sign_in_is_throttled_and_sign_up_can_be_closed(portico, upstreams, tmp_path):
    u = upstreams()
    cfg = portal_config(tmp_path, u)
    p = portico(config=cfg)
    web = Browser(int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1]))
    assert web.send("POST", "/signup", {"email": "a@example.com", "password": PASSWORD})[0] == 201
    for _ in range(5):
        assert web.login("a@example.com", "not the password")[0] == 401
    s, h, _ = web.login("a@example.com")  # the right one, but too late
    assert s == 429 and 0 < int(h["retry-after"]) <= 900
    assert Browser(web.port).send("GET", "/apps")[0] == 401
    p.stop()
    (tmp_path / "closed").mkdir()
    cfg = portal_config(tmp_path / "closed", u)
    cfg["server"]["portal"]["signup"] = "closed"
    portico(config=cfg)
    closed = Browser(int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1]))
    s, _, body = closed.send("POST", "/signup", {"email": "b@example.com", "password": PASSWORD})
    assert s == 403 and body["error"] == "sign-up is closed"


def test_sign_up_by_invitation(portico, upstreams, tmp_path):
    u = upstreams()
    cfg = portal_config(tmp_path, u)
    cfg["server"]["portal"]["signup"] = "invite"
    p = portico(config=cfg)
    web = Browser(int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1]))
    s, _, body = web.send("POST", "/signup", {"email": "new@example.com", "password": PASSWORD})
    assert s == 403 and body["error"] == "sign-up is by invitation only"
    # An operator invites; an invitation cannot carry a password, nor sign in before sign-up.
    s, _, body = call(p, "POST", "/accounts", {"name": "new@example.com", "invited": True,
                                               "password_hash": "$y$x"})
    assert s == 400, body
    assert call(p, "POST", "/accounts", {"name": "new@example.com", "invited": True})[0] == 201
    assert web.login("new@example.com", "")[0] == 401
    assert web.send("POST", "/signup", {"email": "new@example.com", "password": PASSWORD})[0] == 201
    assert web.send("POST", "/signup", {"email": "new@example.com", "password": PASSWORD})[0] == 409
    assert web.login("new@example.com")[0] == 200
    assert "invited" not in call(p, "GET", "/accounts/new@example.com")[2]


REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "build" / "portal.png"
SPEC = {"openapi": "3.0.3", "info": {"title": "Items", "version": "1"},
        "paths": {"/{id}": {"get": {"summary": "One item", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]}},
            "/search": {"post": {"summary": "Search items"}}}}  # under the API's base path


def test_the_pages_in_headless_chromium(portico, upstreams, tmp_path):
    assert shutil.which("node") and Path("/usr/bin/chromium").exists(), \
        "make test installs chromium (scripts/install-deps.sh) and playwright-core (npm ci)"
    u = upstreams()
    cfg = portal_config(tmp_path, u)
    cfg["apis"][0]["openapi"] = SPEC
    cfg["apis"].append({"name": "<b>old</b>", "base_path": "/old", "state": "deprecated",
                        "sunset": "2027-06-30T00:00:00Z"})
    cfg["server"]["portal"]["gateway_url"] = "https://api.example.com"
    portico(config=cfg)
    url = "http://" + cfg["server"]["portal"]["listen"]
    status, headers, page = request(int(url.rsplit(":", 1)[1]), "GET", "/portal/")
    assert status == 200 and "default-src 'self'" in headers["content-security-policy"]
    assert b"&lt;b&gt;old&lt;/b&gt;" in page and b"<b>old</b>" not in page  # escaped
    assert b"deprecated, sunset 2027-06-30T00:00:00Z" in page
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    opts = {"portal": url, "api": "items", "screenshot": str(SCREENSHOT)}
    run = subprocess.run(["node", "portal.mjs", json.dumps(opts)], cwd=REPO / "test/dashboard",
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"portal screenshot: {SCREENSHOT}")
    assert result["problems"] == []  # no console error, failed request, error answer or alert
    assert result["apis"] == ["items", "<b>old</b>"]
    assert sorted(result["operations"]) == ["GET /{id}", "POST /search"]
    assert result["plans"] == ["free", "gold"]
    # (paths in name order: /search first)
    assert result["curl"] == "curl -X POST -H 'apikey: YOUR_KEY' 'https://api.example.com/items/search'"
    assert result["shownName"] == "<script>alert(1)</script>"  # shown as text
    assert result["scripts"] == 1  # only the portal's own
    assert "items under free: active" in result["subscription"]
    assert result["keyShown"]
    assert result["usage"] == "No calls in the last 7 days.", result["usage"]
    assert SCREENSHOT.stat().st_size > 10_000


def test_the_quick_start_serves_the_portal(portico, tmp_path):
    """`make run`'s config (examples/quickstart.yaml) on free ports: its database seeded from
    the file, the portal lists the demo APIs, and a developer gets a key that opens one."""
    import yaml
    cfg = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())
    ports = {name: free_port() for name in ("users", "orders")}
    demo = subprocess.Popen(["/usr/bin/python3",
                             str(REPO / "examples" / "demo_services.py"),
                             *(f"{n}:{p}" for n, p in ports.items())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cfg["listeners"][0]["listen"] = f"127.0.0.1:{free_port()}"
        cfg["server"]["admin"]["listen"] = f"127.0.0.1:{free_port()}"
        cfg["server"]["portal"]["listen"] = f"127.0.0.1:{free_port()}"
        cfg["store"]["path"] = str(tmp_path / "quickstart.db")
        for u in cfg["upstreams"]:
            for i, t in enumerate(u["targets"]):
                address = t["address"] if isinstance(t, dict) else t
                port = {"9001": ports["users"], "9002": ports["orders"]}[address.rsplit(":")[1]]
                address = f"127.0.0.1:{port}"
                u["targets"][i] = {**t, "address": address} if isinstance(t, dict) else address
        cfg["plugins"] = []  # no access log on the test's stdout
        p = portico(config=cfg)
        web = Browser(int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1]))
        s, _, cat = web.send("GET", "/apis")
        assert s == 200 and sorted(a["name"] for a in cat["data"]) == ["legacy-orders", "users"], cat
        assert web.send("POST", "/signup", {"email": "dev@example.com", "password": PASSWORD})[0] \
            == 201
        assert web.login("dev@example.com")[0] == 200
        s, _, app = web.send("POST", "/apps", {"name": "demo"})
        assert s == 201, app
        assert web.send("POST", f"/apps/{app['id']}/subscriptions",
                        {"api": "users", "plan": "free"})[2]["state"] == "active"
        key = web.send("POST", f"/apps/{app['id']}/keys")[2]["key"]
        assert request(p.port, "GET", "/api/users/7")[0] == 401
        status, _, body = request(p.port, "GET", "/api/users/7", {"apikey": key})
        assert status == 200 and json.loads(body)["path"] == "/users/7", body
        assert request(p.port, "GET", "/users/7")[0] == 200  # the open demo routes stay open
    finally:
        demo.terminate()
        demo.wait(timeout=10)


class Navigator:
    """A browser's redirects and cookies, by hand: cookies kept per port (the provider and the
    portal share 127.0.0.1), every hop visible to the test."""

    def __init__(self):
        self.cookies = {}  # port -> {name: value}

    def go(self, url, method="GET", form=None):
        parts = urllib.parse.urlsplit(url)
        jar = self.cookies.setdefault(parts.port, {})
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request(method, parts.path + ("?" + parts.query if parts.query else ""),
                         body=body, headers=headers)
            r = conn.getresponse()
            data = r.read().decode(errors="replace")
            for name, value in r.getheaders():
                if name.lower() == "set-cookie":
                    k, v = value.split(";")[0].split("=", 1)
                    if "max-age=0" in value.lower() or "expires=thu, 01 jan 1970" in value.lower():
                        jar.pop(k, None)
                    else:
                        jar[k] = v
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def sign_in(self, portal_port, login):
        """From the portal's "Sign in with" link through the provider's login and consent pages
        back to the portal's callback; returns the callback URL and the portal's answer."""
        status, headers, body = self.go(f"http://127.0.0.1:{portal_port}/portal/oidc/login")
        assert status == 302, body
        url = headers["location"]
        for _ in range(20):
            status, headers, body = self.go(url)
            if status in (302, 303):
                url = urllib.parse.urljoin(url, headers["location"])
                if url.startswith(f"http://127.0.0.1:{portal_port}/"):
                    return url, self.go(url)
                continue
            action = re.search(r'<form[^>]*action="([^"]+)"', body)
            prompt = re.search(r'name="prompt" value="(\w+)"', body)
            assert status == 200 and action and prompt, (status, body[:2000])
            fields = {"prompt": prompt.group(1)}
            if fields["prompt"] == "login":
                fields.update(login=login, password="anything")
            status, headers, body = self.go(urllib.parse.urljoin(url, html.unescape(
                action.group(1))), "POST", fields)
            assert status in (302, 303), (status, body[:2000])
            url = urllib.parse.urljoin(url, headers["location"])
        raise AssertionError("the provider never sent the browser back")


def test_sign_in_with_openid_connect(portico, upstreams, provider, tmp_path):
    """Authorization code + PKCE against the real oidc-provider the jwt tests use: the account
    is made at the first sign-in, the session works like a password one, a replayed or foreign
    callback and an unverified email are refused."""
    u = upstreams()
    cfg = portal_config(tmp_path, u)
    portal_port = int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1])
    idp = provider(redirect_uri=f"http://127.0.0.1:{portal_port}/portal/oidc/callback")
    cfg["server"]["portal"]["oidc"] = {"issuer": idp.issuer, "client_id": "portal",
                                       "client_secret": "portal-secret"}
    p = portico(config=cfg)
    # The provider's discovery document is fetched at start: the link works once it is read.
    wait_for(lambda: Navigator().go(f"http://127.0.0.1:{portal_port}/portal/oidc/login")[0] == 302,
             what="discovery read")
    status, _, page = request(portal_port, "GET", "/portal/account")
    assert b'href="/portal/oidc/login"' in page

    nav = Navigator()
    t0 = time.monotonic()
    callback, (status, headers, body) = nav.sign_in(portal_port, "dev")
    print(f"OpenID Connect sign-in, link to session (login and consent pages, account made): "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert "code=" in callback and "state=" in callback
    assert status == 302 and headers["location"] == "/portal/account", body
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Lax" in headers["set-cookie"]
    # The account exists, linked to the provider's subject, without a password.
    s, _, account = call(p, "GET", "/accounts/dev@example.com")
    assert s == 200 and account["oidc_subject"] == "dev" and "password_hash" not in account
    assert Browser(portal_port).login("dev@example.com", "anything at all!")[0] == 401
    # The session works like a password one: the page's script gets its CSRF token.
    web = Browser(portal_port)
    web.cookie = "portico_portal=" + nav.cookies[portal_port]["portico_portal"]
    s, _, session = web.send("GET", "/session")
    assert s == 200 and session["email"] == "dev@example.com" and session["signed_in"], session
    web.csrf = session["csrf_token"]
    assert web.send("POST", "/apps", {"name": "from-oidc"})[0] == 201
    assert Browser(portal_port).send("GET", "/session")[2] == {"signed_in": False}

    # A callback replayed (its state was used) or from a browser without the state cookie.
    assert nav.go(callback)[0] == 400
    other = Navigator()
    callback2, _ = other.sign_in(portal_port, "dev")  # consumes nothing: nav's jar is not used
    stranger = Navigator()
    assert stranger.go(callback2)[0] == 400  # another browser: no state cookie
    # Signing in again reaches the same account (a new session); an unverified email does not.
    _, (status, headers, _) = Navigator().sign_in(portal_port, "dev")
    assert status == 302 and len(call(p, "GET", "/accounts")[2]["data"]) == 1
    _, (status, _, body) = Navigator().sign_in(portal_port, "unverified-bob")
    assert status == 403 and "has not verified" in json.loads(body)["error"], body


def test_portal_oidc_settings_are_checked(tmp_path):
    cfg = base_config(free_port(), free_port(), {}, [])
    cfg["server"]["portal"] = {"listen": f"127.0.0.1:{free_port()}", "oidc": {
        "issuer": "id.example.com", "client_id": "portal", "scopes": ["email"], "secret": "x"}}
    code, out = validate(cfg, tmp_path)
    assert code != 0
    for error in ("server.portal.oidc.issuer: must be an http:// or https:// URL",
                  "server.portal.oidc.scopes: must include openid",
                  'server.portal.oidc.secret: unknown key "secret"'):
        assert error in out, out


def test_usage_is_kept_in_the_store_across_restarts(portico, upstreams, tmp_path):
    """With SQLite, usage goes to the database (every store.usage_flush and at shutdown): a
    restarted node shows the calls made before, and the quota the application has left."""
    u = upstreams()
    cfg = portal_config(tmp_path, u)
    cfg["plans"][0]["quota"] = {"requests": 50, "per": "day"}
    p = portico(config=cfg)
    web = Browser(int(cfg["server"]["portal"]["listen"].rsplit(":", 1)[1]))
    assert web.send("POST", "/signup", {"email": "dev@example.com", "password": PASSWORD})[0] == 201
    assert web.login("dev@example.com")[0] == 200
    app = web.send("POST", "/apps", {"name": "mine"})[2]
    assert web.send("POST", f"/apps/{app['id']}/subscriptions",
                    {"api": "items", "plan": "free"})[0] == 201
    key = web.send("POST", f"/apps/{app['id']}/keys")[2]["key"]
    codes = [request(p.port, "GET", "/items/1", {"apikey": key})[0] for _ in range(3)]
    assert codes == [200, 200, 200]

    def usage():
        return web.send("GET", f"/apps/{app['id']}/usage?days=7")[2]
    wait_for(lambda: usage()["data"] and usage()["data"][0]["requests"] == 3, what="usage")
    assert usage()["quota"] == [{"api": "items", "limit": 50, "remaining": 47,
                                 "resets_at": usage()["quota"][0]["resets_at"]}]
    assert usage()["quota"][0]["resets_at"].endswith("T00:00:00Z")  # a day quota: at midnight

    p.stop()  # graceful: what was counted goes to the database
    again = dict(cfg)
    for section in ("upstreams", "routes", "apis", "plans"):  # they live in the database now
        again.pop(section, None)
    again["listeners"] = [{"name": "main", "listen": f"127.0.0.1:{free_port()}"}]
    again["server"] = {**cfg["server"], "admin": {**cfg["server"]["admin"],
                                                  "listen": f"127.0.0.1:{free_port()}"}}
    q = portico(config=again)
    assert web.login("dev@example.com")[0] == 200  # sessions are per process
    u2 = usage()
    assert u2["data"][0]["requests"] == 3 and u2["quota"][0]["remaining"] == 47, u2
    assert request(q.port, "GET", "/items/1", {"apikey": key})[0] == 200
    wait_for(lambda: usage()["data"][0]["requests"] == 4, what="the new call added")
