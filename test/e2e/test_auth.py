"""Consumers, key-auth, basic-auth, acl, ip-restriction and cors, with auth_mode any/all and
anonymous consumers. Password hashes come from mkpasswd (yescrypt, bcrypt) and openssl passwd
(SHA-512 crypt)."""
import json
import subprocess
import time

import pytest

from conftest import PORTICO_BIN, base_config, free_port, request, validate, wait_for

ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-9876543210"


def mkpasswd(method, password):
    if method == "sha512":
        return subprocess.run(["openssl", "passwd", "-6", password], capture_output=True,
                              text=True, check=True).stdout.strip()
    return subprocess.run(["mkpasswd", "-m", method, password], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def hashes():
    return {"yescrypt": mkpasswd("yescrypt", "alice-pw"), "bcrypt": mkpasswd("bcrypt", "bob-pw"),
            "sha512": mkpasswd("sha512", "carol-pw")}


def consumers(hashes):
    return [
        {"name": "alice", "groups": ["gold", "staff"], "custom_id": "u-1",
         "credentials": {"key-auth": [{"key": ALICE_KEY}],
                         "basic-auth": [{"username": "alice", "password_hash": hashes["yescrypt"]}]}},
        {"name": "bob", "groups": ["bronze"],
         "credentials": {"key-auth": [{"key": BOB_KEY}],
                         "basic-auth": [{"username": "bob", "password_hash": hashes["bcrypt"]}]}},
        {"name": "carol",
         "credentials": {"basic-auth": [{"username": "carol", "password_hash": hashes["sha512"]}]}},
        {"name": "guest", "groups": ["anonymous"]},
    ]


def gateway(portico, u, hashes, routes, **extra):
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, routes)
    cfg["consumers"] = consumers(hashes)
    cfg.update(extra)
    return portico(config=cfg)


def basic(user, password):
    import base64
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_key_auth_header_query_hide_and_consumer_headers(portico, upstreams, hashes):
    u = upstreams()
    p = gateway(portico, u, hashes, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "key-auth", "config": {"header": "apikey", "query": "apikey",
                                                     "hide_credentials": True}}]}])
    s, h, body = request(p.port, "GET", "/x", headers={"apikey": ALICE_KEY,
                                                      "X-Consumer-Name": "forged"})
    assert s == 200
    sent = u.requests[-1]
    assert sent.all("x-consumer-name") == ["alice"]
    assert sent.header("x-consumer-groups") == "gold,staff"
    assert sent.header("x-consumer-custom-id") == "u-1"
    assert sent.header("apikey") is None  # hidden
    s, _, _ = request(p.port, "GET", f"/q?a=1&apikey={BOB_KEY}&b=2")
    assert s == 200
    assert u.requests[-1].target == "/q?a=1&b=2"
    assert u.requests[-1].header("x-consumer-name") == "bob"
    n = len(u.requests)
    s, h, body = request(p.port, "GET", "/x")
    assert s == 401 and h["www-authenticate"].startswith("Key")
    err = json.loads(body)
    assert err["status"] == 401 and err["request_id"] == h["x-request-id"]
    s, h, body = request(p.port, "GET", "/x", headers={"apikey": "wrong-key-123456"})
    assert s == 401 and "invalid credentials" in body.decode()
    s, h, body = request(p.port, "GET", "/x", headers={"X-Consumer-Name": "forged"})
    assert s == 401
    assert len(u.requests) == n  # refused requests never reach the upstream
    assert p.metric("portico_auth_refusals_total",
                    'route="r",reason="missing_credentials"') == 2
    assert p.metric("portico_auth_refusals_total",
                    'route="r",reason="invalid_credentials"') == 1
    # Credentials never show in the admin config view.
    cfg_view = p.admin("/config")[1]
    assert ALICE_KEY not in cfg_view and "$y$" not in cfg_view


def test_basic_auth_with_yescrypt_bcrypt_and_sha512_hashes(portico, upstreams, hashes):
    u = upstreams()
    p = gateway(portico, u, hashes, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "basic-auth", "config": {"realm": "api", "hide_credentials": True}}]}])
    for user, pw in (("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw")):
        s, _, _ = request(p.port, "GET", "/", headers={"Authorization": basic(user, pw)})
        assert s == 200, user
        assert u.requests[-1].header("x-consumer-name") == user
        assert u.requests[-1].header("authorization") is None
    # The cached pair answers without hashing again: many requests stay quick.
    start = time.monotonic()
    for _ in range(50):
        assert request(p.port, "GET", "/", headers={"Authorization": basic("alice", "alice-pw")})[0] == 200
    assert time.monotonic() - start < 5
    s, h, body = request(p.port, "GET", "/", headers={"Authorization": basic("alice", "bob-pw")})
    assert s == 401 and h["www-authenticate"] == 'Basic realm="api", charset="UTF-8"'
    s, _, body2 = request(p.port, "GET", "/", headers={"Authorization": basic("nobody", "x")})
    assert s == 401
    # The same answer whether the user exists or not.
    assert json.loads(body)["error"] == json.loads(body2)["error"]
    for bad in ("Basic !!!", "Basic " + "YWxpY2U=", "Bearer abc"):
        assert request(p.port, "GET", "/", headers={"Authorization": bad})[0] == 401
    assert request(p.port, "GET", "/")[0] == 401


def test_acl_and_auth_modes_and_anonymous(portico, upstreams, hashes):
    u = upstreams()
    both = [{"name": "key-auth", "config": {}}, {"name": "basic-auth", "config": {}}]
    p = gateway(portico, u, hashes, [
        {"name": "gold", "match": {"path_prefix": "/gold"}, "upstream": "svc",
         "plugins": both + [{"name": "acl", "config": {"allow": ["gold"]}}]},
        {"name": "all", "match": {"path_prefix": "/all"}, "upstream": "svc", "auth_mode": "all",
         "plugins": both},
        {"name": "anon", "match": {"path_prefix": "/anon"}, "upstream": "svc",
         "anonymous": "guest",
         "plugins": [{"name": "key-auth", "config": {}},
                     {"name": "acl", "config": {"deny": ["bronze"]}}]}])
    # any: either credential is enough; acl by group.
    assert request(p.port, "GET", "/gold", headers={"apikey": ALICE_KEY})[0] == 200
    assert request(p.port, "GET", "/gold",
                   headers={"Authorization": basic("alice", "alice-pw")})[0] == 200
    s, _, body = request(p.port, "GET", "/gold", headers={"apikey": BOB_KEY})
    assert s == 403 and "cannot consume" in body.decode()
    s, h, _ = request(p.port, "GET", "/gold")
    assert s == 401 and h["www-authenticate"].startswith("Key")  # the first refusal
    # A bad key then a good password: accepted.
    assert request(p.port, "GET", "/gold", headers={
        "apikey": "bad-key-00000000", "Authorization": basic("alice", "alice-pw")})[0] == 200
    # all: both credentials needed.
    assert request(p.port, "GET", "/all", headers={"apikey": ALICE_KEY})[0] == 401
    assert request(p.port, "GET", "/all", headers={
        "apikey": ALICE_KEY, "Authorization": basic("alice", "alice-pw")})[0] == 200
    # anonymous: no key is the guest consumer; bronze is denied.
    s, _, _ = request(p.port, "GET", "/anon")
    assert s == 200
    assert u.requests[-1].header("x-consumer-name") == "guest"
    assert u.requests[-1].header("x-anonymous-consumer") == "true"
    assert request(p.port, "GET", "/anon", headers={"apikey": BOB_KEY})[0] == 403
    assert p.metric("portico_auth_refusals_total", 'route="gold",reason="forbidden"') == 1


def test_ip_restriction_allow_deny_and_trusted_proxies(portico, upstreams, hashes):
    u = upstreams()
    p = gateway(portico, u, hashes, [
        {"name": "allow", "match": {"path_prefix": "/allow"}, "upstream": "svc",
         "plugins": [{"name": "ip-restriction", "config": {"allow": ["127.0.0.0/8", "::1"]}}]},
        {"name": "deny", "match": {"path_prefix": "/deny"}, "upstream": "svc",
         "plugins": [{"name": "ip-restriction", "config": {"deny": ["127.0.0.1"]}}]},
        {"name": "proxied", "match": {"path_prefix": "/proxied"}, "upstream": "svc",
         "plugins": [{"name": "ip-restriction", "config": {
             "allow": ["203.0.113.0/24", "2001:db8::/32"], "trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"]}}]}])
    assert request(p.port, "GET", "/allow")[0] == 200
    s, _, body = request(p.port, "GET", "/deny")
    assert s == 403 and "address" in body.decode()
    # Behind trusted proxies the client is the rightmost untrusted X-Forwarded-For hop.
    assert request(p.port, "GET", "/proxied",
                   headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.1.2.3"})[0] == 200
    assert request(p.port, "GET", "/proxied",
                   headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})[0] == 403
    assert request(p.port, "GET", "/proxied",
                   headers={"X-Forwarded-For": "2001:db8::5"})[0] == 200
    assert request(p.port, "GET", "/proxied", headers={"X-Forwarded-For": "garbage"})[0] == 403
    assert request(p.port, "GET", "/proxied")[0] == 403  # the proxy itself is not allowed
    assert p.metric("portico_auth_refusals_total", 'route="deny",reason="address_denied"') == 1


def test_cors_preflight_and_response_headers(portico, upstreams, hashes):
    u = upstreams()
    p = gateway(portico, u, hashes, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "cors", "config": {
             "origins": ["https://app.example.com", "https://*.example.org"],
             "origins_regex": ["https://dev-[0-9]+\\.example\\.net"],
             "methods": ["GET", "POST"], "headers": ["Content-Type", "X-Token"],
             "exposed_headers": ["X-Upstream"], "credentials": True, "max_age": "10m"}}]}])
    s, h, _ = request(p.port, "OPTIONS", "/items", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert s == 204
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-methods"] == "GET, POST"
    assert h["access-control-allow-headers"] == "Content-Type, X-Token"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-max-age"] == "600"
    assert "Origin" in h["vary"]
    assert u.requests == []  # preflights never reach the upstream
    s, h, _ = request(p.port, "GET", "/items", headers={"Origin": "https://a.b.example.org"})
    assert s == 200 and h["access-control-allow-origin"] == "https://a.b.example.org"
    assert h["access-control-expose-headers"] == "X-Upstream" and "Origin" in h["vary"]
    s, h, _ = request(p.port, "GET", "/items", headers={"Origin": "https://dev-42.example.net"})
    assert h["access-control-allow-origin"] == "https://dev-42.example.net"
    s, h, _ = request(p.port, "GET", "/items", headers={"Origin": "https://evil.example.com"})
    assert s == 200 and "access-control-allow-origin" not in h and "Origin" in h["vary"]
    s, h, _ = request(p.port, "OPTIONS", "/items", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert s == 204 and "access-control-allow-origin" not in h
    s, h, _ = request(p.port, "GET", "/items")
    assert "Origin" in h["vary"]


def test_bad_auth_config_is_refused(tmp_path, hashes):
    cfg = base_config(free_port(), free_port(), {"svc": ["127.0.0.1:1"]}, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "ip-restriction", "config": {"allow": ["10.0.0.0/33"]}},
                     {"name": "cors", "config": {"origins": ["example.com"]}},
                     {"name": "acl", "config": {}}]}])
    cfg["consumers"] = [
        {"name": "a", "credentials": {"key-auth": [{"key": "short"}],
                                      "basic-auth": [{"username": "a", "password_hash": "plain"}],
                                      "oauth": []}},
        {"name": "b", "credentials": {"key-auth": [{"key": "same-key-123"}]}},
        {"name": "c", "credentials": {"key-auth": [{"key": "same-key-123"}]}}]
    code, out = validate(cfg, tmp_path)
    assert code != 0
    for expected in ("consumers[0].credentials.key-auth[0].key: must be at least 8",
                     "consumers[0].credentials.basic-auth[0].password_hash",
                     "consumers[0].credentials.oauth: unknown credential type",
                     "consumers[2].credentials.key-auth[0].key: is used by another credential",
                     "allow[0]: not an IPv4/IPv6 address", "origins[0]", "give allow or deny"):
        assert expected in out, (expected, out)
    assert "same-key-123" not in out  # a key never appears in a message
    # Route-level mistakes, found before any plugin is built.
    cfg["routes"][0].update({"anonymous": "nobody", "auth_mode": "some"})
    code, out = validate(cfg, tmp_path)
    assert 'routes[0].anonymous: unknown consumer "nobody"' in out
    assert 'routes[0].auth_mode: unknown auth_mode "some" (any, all)' in out
    assert "validate.yaml:" in out  # with the position in the (JSON) file


@pytest.mark.heavy  # a timing target: meaningless under sanitizers
def test_100k_consumers_load_quickly(tmp_path):
    cfg = base_config(free_port(), free_port(), {"svc": ["127.0.0.1:1"]}, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "key-auth", "config": {}}]}])
    cfg["consumers"] = [{"name": f"c{i}", "groups": ["g"],
                         "credentials": {"key-auth": [{"key": f"key-{i:08d}-secret"}]}}
                        for i in range(100_000)]
    (tmp_path / "validate.yaml").write_text(json.dumps(cfg))  # written before the clock runs
    start = time.monotonic()
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(tmp_path / "validate.yaml")],
                       capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stdout + r.stderr
    assert elapsed < 2.0, f"100,000 consumers took {elapsed:.2f}s"


def test_credentials_never_reach_the_access_log(portico, upstreams, hashes, tmp_path):
    log = tmp_path / "access.log"
    u = upstreams()
    p = gateway(portico, u, hashes, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "key-auth", "config": {}}]}],
        plugins=[{"name": "access-log", "config": {"path": str(log),
                                                   "fields": ["path", "status", "consumer"]}}])
    assert request(p.port, "GET", f"/q?a=1&apikey={ALICE_KEY}")[0] == 200
    assert request(p.port, "GET", "/q?apikey=wrong-but-secret")[0] == 401
    assert request(p.port, "GET", "/", headers={"apikey": BOB_KEY})[0] == 200
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 3, what="3 lines")
    text = log.read_text()
    assert ALICE_KEY not in text and "wrong-but-secret" not in text and BOB_KEY not in text
    # Each worker has its own log buffer: lines of different workers need not be in order.
    lines = {json.loads(l)["path"]: json.loads(l) for l in text.splitlines()}
    assert lines["/q?a=1&apikey=***"] == {"path": "/q?a=1&apikey=***", "status": 200,
                                          "consumer": "alice"}
    assert lines["/q?apikey=***"]["consumer"] == ""
    assert lines["/"]["consumer"] == "bob"
