"""jwt, oauth2-introspection and ext-auth against real services. jwt and introspection use a
real OpenID Connect provider (npm oidc-provider, test/oidc): discovery, JWKS
caching, RS256 and ES256 access tokens from the client-credentials grant, key rotation at the
provider without a reload, the provider down with cached keys. The rejection cases use tokens
signed here (openssl) with a key served from a local JWKS."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import base_config, free_port, refused_port, request, validate, wait_for

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
AUDIENCE = "https://api.example.com"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Provider:
    def __init__(self, port, prefix, redirect_uri=None):
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(["node", str(OIDC_DIR / "provider.mjs"), str(port), prefix,
                                      *([redirect_uri] if redirect_uri else [])],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(self.ready, timeout=20, what="oidc-provider")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("oidc-provider exited: " + self.proc.stdout.read())
        try:
            urllib.request.urlopen(self.issuer + "/.well-known/openid-configuration", timeout=1)
            return True
        except OSError:
            return False

    def token(self, client="rs-client", secret="rs-secret", scope="orders.read"):
        req = urllib.request.Request(
            self.issuer + "/token", data=f"grant_type=client_credentials&scope={scope}".encode(),
            headers={"Authorization": "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode(),
                     "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())["access_token"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def node_modules():
    if not shutil.which("node"):
        pytest.fail("node is required (scripts/install-deps.sh)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True,
                       capture_output=True, timeout=300)


@pytest.fixture
def provider(node_modules):
    started = []

    def make(port=None, prefix="k1", redirect_uri=None):
        p = Provider(port or free_port(), prefix, redirect_uri)
        started.append(p)
        return p

    yield make
    for p in started:
        if p.proc.poll() is None:
            p.stop()


def jwt_route(name, prefix, config, **extra):
    return {"name": name, "match": {"path_prefix": prefix}, "upstream": "svc",
            "plugins": [{"name": "jwt", "config": config}], **extra}


def test_provider_tokens_discovery_rotation_and_outage(portico, upstreams, provider):
    u = upstreams()
    idp = provider()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, [
        jwt_route("orders", "/orders", {
            "discovery": idp.issuer + "/.well-known/openid-configuration",
            "audiences": [AUDIENCE], "algorithms": ["RS256", "ES256"], "leeway": "30s",
            "required_claims": {"scope": ["orders.read"]},
            "claims_to_headers": {"sub": "X-User-Id", "client_id": "X-Client"},
            "consumer_claim": "client_id", "jwks_min_refetch": "300ms"}),
        {"name": "after", "match": {"path_prefix": "/gold"}, "upstream": "svc",
         "plugins": [{"name": "jwt", "config": {
             "discovery": idp.issuer + "/.well-known/openid-configuration",
             "algorithms": ["RS256", "ES256"], "consumer_claim": "client_id"}},
             {"name": "acl", "config": {"allow": ["gold"]}}]}])
    cfg["consumers"] = [{"name": "rs-client", "groups": ["gold"]}, {"name": "es-client"}]
    p = portico(config=cfg)
    rs, es = idp.token(), idp.token("es-client", "es-secret")
    assert json.loads(base64.urlsafe_b64decode(rs.split(".")[0] + "=="))["alg"] == "RS256"
    assert json.loads(base64.urlsafe_b64decode(es.split(".")[0] + "=="))["alg"] == "ES256"
    for token, client in ((rs, "rs-client"), (es, "es-client")):
        s, _, _ = request(p.port, "GET", "/orders/1", headers={"Authorization": "Bearer " + token,
                                                               "X-User-Id": "forged"})
        assert s == 200, client
        sent = u.requests[-1]
        assert sent.all("x-user-id") == [client] and sent.header("x-client") == client
        assert sent.header("x-consumer-name") == client
    assert request(p.port, "GET", "/gold", headers={"Authorization": "Bearer " + rs})[0] == 200
    assert request(p.port, "GET", "/gold", headers={"Authorization": "Bearer " + es})[0] == 403
    # A token without the required scope.
    s, h, _ = request(p.port, "GET", "/orders/1",
                      headers={"Authorization": "Bearer " + idp.token(scope="orders.write")})
    assert s == 401 and h["www-authenticate"].startswith("Bearer")
    s, h, _ = request(p.port, "GET", "/orders/1")
    assert s == 401 and h["www-authenticate"] == "Bearer"

    # Rotation: the provider restarts with new keys; the new kid triggers a refetch, no reload.
    spare = idp.token()  # signed with the old key, not yet seen by Portico
    port = idp.port
    idp.stop()
    idp2 = provider(port=port, prefix="k2")
    rotated = idp2.token()
    assert "k2-rsa" in base64.urlsafe_b64decode(rotated.split(".")[0] + "==").decode()
    time.sleep(0.4)  # unknown kids refetch at most every jwks_min_refetch
    assert request(p.port, "GET", "/orders/2", headers={"Authorization": "Bearer " + rotated})[0] == 200

    # Provider down: the last good key set keeps serving tokens signed with it.
    another = idp2.token()
    idp2.stop()
    assert request(p.port, "GET", "/orders/3", headers={"Authorization": "Bearer " + another})[0] == 200
    assert request(p.port, "GET", "/orders/3", headers={"Authorization": "Bearer " + rotated})[0] == 200
    # The old key is gone from the set: its token is refused.
    assert request(p.port, "GET", "/orders/4", headers={"Authorization": "Bearer " + spare})[0] == 401
    assert "Bearer" not in p.logs() and rotated not in p.logs()


class LocalJwks:
    """An RSA key made with openssl, its JWKS served on 127.0.0.1, and tokens signed with it."""

    def __init__(self, tmp):
        self.key = tmp / "rsa.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", str(self.key)], check=True, capture_output=True)
        modulus = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        n = bytes.fromhex(modulus.split("=", 1)[1])
        self.pub = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-pubout"], check=True,
                                  capture_output=True).stdout
        self.jwks = {"keys": [{"kty": "RSA", "kid": "local", "use": "sig", "alg": "RS256",
                               "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}]}
        jwks_bytes = json.dumps(self.jwks).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(jwks_bytes)))
                self.end_headers()
                self.wfile.write(jwks_bytes)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, claims, kid="local", alg="RS256", header=None):
        head = b64url(json.dumps(header or {"alg": alg, "typ": "JWT", "kid": kid}).encode())
        body = b64url(json.dumps(claims).encode())
        signing_input = f"{head}.{body}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                             input=signing_input, check=True, capture_output=True).stdout
        return f"{head}.{body}.{b64url(sig)}"

    def stop(self):
        self.server.shutdown()


def test_every_rejection_case(portico, upstreams, tmp_path):
    import hmac
    import hashlib
    local = LocalJwks(tmp_path)
    try:
        u = upstreams()
        p = portico(upstreams={"svc": [u.address]}, routes=[jwt_route("api", "/", {
            "jwks_uri": local.url, "issuer": "https://issuer.test", "audiences": ["api"],
            "algorithms": ["RS256"], "leeway": "10s", "max_token_bytes": 4096,
            "claims_to_headers": {"sub": "X-User"}})])
        now = int(time.time())
        good = {"iss": "https://issuer.test", "aud": "api", "sub": "u1", "iat": now,
                "exp": now + 300}

        def status(token):
            return request(p.port, "GET", "/", headers={"Authorization": "Bearer " + token})[0]

        assert status(local.sign(good)) == 200
        assert status(local.sign({**good, "aud": ["other", "api"]})) == 200
        assert status(local.sign({**good, "exp": now - 5})) == 200  # within the leeway
        # NumericDates past what an int64 holds are far future (or far past), not undefined.
        assert status(local.sign({**good, "exp": 1e300})) == 200
        assert status(local.sign({**good, "exp": 2**64 - 1})) == 200
        assert u.requests[-1].all("x-user") == ["u1"]
        cases = {
            "expired": local.sign({**good, "exp": now - 60}),
            "no exp": local.sign({k: v for k, v in good.items() if k != "exp"}),
            "not yet valid": local.sign({**good, "nbf": now + 120}),
            "issued in the future": local.sign({**good, "iat": now + 120}),
            "wrong issuer": local.sign({**good, "iss": "https://evil.test"}),
            "wrong audience": local.sign({**good, "aud": "other"}),
            "unknown kid": local.sign(good, kid="nope"),
            "alg none": b64url(b'{"alg":"none","typ":"JWT"}') + "." +
                        b64url(json.dumps(good).encode()) + ".",
            "stripped signature": local.sign(good).rsplit(".", 1)[0] + ".",
            "garbage": "not.a.jwt",
            "two parts": "abc.def",
            "oversized": local.sign({**good, "pad": "x" * 5000}),
            "exp far past": local.sign({**good, "exp": -1e300}),
            "nbf far future": local.sign({**good, "nbf": 2**64 - 1}),
            # A signed claim bound for a header must be a valid field value: no header injection.
            "CR LF in a header's claim": local.sign({**good, "sub": "u1\r\nX-Injected: yes"}),
            "NUL in a header's claim": local.sign({**good, "sub": "u1\u0000"}),
        }
        # A payload swapped under a valid signature.
        h, _, s = local.sign(good).split(".")
        cases["tampered payload"] = f"{h}.{b64url(json.dumps({**good, 'sub': 'admin'}).encode())}.{s}"
        # HS256 "signed" with the RSA public key as the HMAC secret (algorithm confusion).
        hs_head = b64url(b'{"alg":"HS256","typ":"JWT","kid":"local"}')
        hs_body = b64url(json.dumps(good).encode())
        mac = hmac.new(local.pub, f"{hs_head}.{hs_body}".encode(), hashlib.sha256).digest()
        cases["HS256 with the public key"] = f"{hs_head}.{hs_body}.{b64url(mac)}"
        for name, token in cases.items():
            assert status(token) == 401, name
        assert len(u.requests) == 5
        assert not any(r.header("x-injected") for r in u.requests)
        assert p.metric("portico_auth_refusals_total",
                        'route="api",reason="invalid_credentials"') == len(cases)
    finally:
        local.stop()


def test_bad_jwt_config_is_refused(tmp_path):
    cfg = base_config(free_port(), free_port(), {"svc": ["127.0.0.1:1"]}, [
        jwt_route("a", "/a", {"algorithms": ["RS256", "none"]}),
        jwt_route("b", "/b", {"jwks_uri": "http://x/jwks", "algorithms": ["HS256"]})])
    code, out = validate(cfg, tmp_path)
    assert code != 0
    assert 'algorithms[1]: unsupported algorithm "none"' in out
    assert "HMAC algorithms need shared secrets" in out


def opaque_token(idp, scope="orders.read"):
    req = urllib.request.Request(
        idp.issuer + "/token",
        data=f"grant_type=client_credentials&scope={scope}&resource=urn:opaque".encode(),
        headers={"Authorization": "Basic " + base64.b64encode(b"rs-client:rs-secret").decode(),
                 "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())["access_token"]


def test_oauth2_introspection_against_the_provider(portico, upstreams, provider):
    u = upstreams()
    idp = provider()
    introspection = {"endpoint": idp.issuer + "/token/introspection", "client_id": "rs-client",
                     "client_secret": "rs-secret", "required_scopes": ["orders.read"],
                     "audiences": ["urn:opaque"], "consumer_claim": "client_id",
                     "claims_to_headers": {"client_id": "X-Client"}, "negative_cache_ttl": "1s"}
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, [
        {"name": "closed", "match": {"path_prefix": "/closed"}, "upstream": "svc",
         "plugins": [{"name": "oauth2-introspection", "config": introspection}]},
        {"name": "open", "match": {"path_prefix": "/open"}, "upstream": "svc",
         "plugins": [{"name": "oauth2-introspection",
                      "config": {**introspection, "on_failure": "fail_open"}}]}])
    cfg["consumers"] = [{"name": "rs-client", "groups": ["gold"]}]
    p = portico(config=cfg)
    token = opaque_token(idp)

    def get(path, tok):
        return request(p.port, "GET", path, headers={"Authorization": "Bearer " + tok})

    s, _, _ = get("/closed/1", token)
    assert s == 200
    assert u.requests[-1].header("x-client") == "rs-client"
    assert u.requests[-1].header("x-consumer-name") == "rs-client"
    assert get("/closed/1", "not-a-real-token")[0] == 401
    assert get("/closed/1", opaque_token(idp, scope="orders.write"))[0] == 401  # scope missing
    # The provider goes down: a cached answer still serves; an unknown token is refused
    # (fail_closed, 503) or let through (fail_open).
    fresh = opaque_token(idp)
    idp.stop()
    assert get("/closed/2", token)[0] == 200
    s, _, body = get("/closed/2", fresh)
    assert s == 503 and json.loads(body)["status"] == 503
    assert get("/open/2", fresh)[0] == 200


class AuthService:
    """A forward-auth service: "Bearer good" passes (with X-User), anything else gets 401."""

    def __init__(self):
        self.calls = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                outer.calls.append((self.command, self.path, dict(self.headers)))
                if self.headers.get("Authorization") == "Bearer good":
                    self.send_response(200)
                    self.send_header("X-User", "u-42")
                    self.send_header("X-Secret-Internal", "no")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"error":"go away"}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("WWW-Authenticate", 'Bearer realm="ext"')
                self.send_header("X-Reason", "no-token")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/auth"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def test_ext_auth_forwards_and_relays_refusals(portico, upstreams):
    auth = AuthService()
    try:
        u = upstreams()
        dead = f"http://127.0.0.1:{refused_port()}/auth"
        p = portico(upstreams={"svc": [u.address]}, routes=[
            {"name": "ext", "match": {"path_prefix": "/api"}, "upstream": "svc",
             "plugins": [{"name": "ext-auth", "config": {
                 "url": auth.url, "request_headers": ["Authorization"],
                 "upstream_headers": ["X-User"], "client_headers": ["X-Reason"],
                 "timeout": "1s"}}]},
            {"name": "down", "match": {"path_prefix": "/down"}, "upstream": "svc",
             "plugins": [{"name": "ext-auth", "config": {"url": dead, "timeout": "500ms"}}]},
            {"name": "down-open", "match": {"path_prefix": "/open"}, "upstream": "svc",
             "plugins": [{"name": "ext-auth", "config": {"url": dead, "on_failure": "fail_open"}}]}])
        s, _, _ = request(p.port, "DELETE", "/api/items/7?x=1",
                          headers={"Authorization": "Bearer good", "X-User": "forged",
                                   "Cookie": "c=1"})
        assert s == 200
        method, path, headers = auth.calls[-1]
        assert (method, path) == ("DELETE", "/auth/api/items/7?x=1")
        assert headers.get("Authorization") == "Bearer good" and "Cookie" not in headers
        assert headers.get("X-Forwarded-Method") == "DELETE"
        assert u.requests[-1].all("x-user") == ["u-42"]
        assert u.requests[-1].header("x-secret-internal") is None
        n = len(u.requests)
        s, h, body = request(p.port, "GET", "/api/items", headers={"Authorization": "Bearer bad"})
        assert s == 401 and json.loads(body) == {"error": "go away"}
        assert h["www-authenticate"] == 'Bearer realm="ext"' and h["x-reason"] == "no-token"
        assert len(u.requests) == n
        s, _, body = request(p.port, "GET", "/down/x")
        assert s == 503 and len(u.requests) == n
        assert request(p.port, "GET", "/open/x")[0] == 200
    finally:
        auth.stop()


def test_consumers_own_jwt_keys(portico, upstreams, tmp_path):
    import hashlib
    import hmac
    local = LocalJwks(tmp_path)  # its key is carol's RS256 key; no JWKS is used here
    local.stop()
    secret = "s" * 40
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, [
        jwt_route("own", "/", {"algorithms": ["HS256", "RS256"], "issuer": "me"})])
    cfg["consumers"] = [
        {"name": "dave", "credentials": {"jwt": [{"key": "dave-key", "algorithm": "HS256",
                                                   "secret": secret}]}},
        {"name": "carol", "credentials": {"jwt": [{"key": "local", "algorithm": "RS256",
                                                    "public_key": local.pub.decode()}]}}]
    p = portico(config=cfg)
    now = int(time.time())
    claims = {"iss": "me", "exp": now + 60}

    def hs256(kid, key):
        head = b64url(json.dumps({"alg": "HS256", "kid": kid}).encode())
        body = b64url(json.dumps(claims).encode())
        mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64url(mac)}"

    def status(token):
        return request(p.port, "GET", "/", headers={"Authorization": "Bearer " + token})[0]

    assert status(hs256("dave-key", secret.encode())) == 200
    assert u.requests[-1].header("x-consumer-name") == "dave"
    assert status(local.sign(claims)) == 200
    assert u.requests[-1].header("x-consumer-name") == "carol"
    assert status(hs256("dave-key", b"x" * 40)) == 401  # wrong secret
    assert status(hs256("local", local.pub)) == 401  # HS256 against carol's RSA key
    assert status(local.sign({**claims, "iss": "other"})) == 401


def test_every_signature_algorithm(portico, upstreams, tmp_path):
    """Keys and signatures made with the openssl CLI for each JWS algorithm Portico takes."""
    def run(*args, data=None):
        return subprocess.run(list(args), input=data, check=True, capture_output=True).stdout

    rsa = tmp_path / "rsa.pem"
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(rsa))
    ec256, ec384, ed = tmp_path / "ec256.pem", tmp_path / "ec384.pem", tmp_path / "ed.pem"
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(ec256))
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", str(ec384))
    run("openssl", "genpkey", "-algorithm", "ED25519", "-out", str(ed))

    def pub(key):
        return run("openssl", "pkey", "-in", str(key), "-pubout").decode()

    def der_to_raw(der, size):
        # ECDSA DER (SEQUENCE of two INTEGERs) to JWS r||s.
        assert der[0] == 0x30
        i = 2 if der[1] < 0x80 else 3
        out = b""
        for _ in range(2):
            assert der[i] == 0x02
            n = der[i + 1]
            out += der[i + 2:i + 2 + n].lstrip(b"\x00").rjust(size, b"\x00")
            i += 2 + n
        return out

    def sign(alg, key, data):
        if alg.startswith("RS"):
            return run("openssl", "dgst", f"-sha{alg[2:]}", "-sign", str(key), data=data)
        if alg.startswith("PS"):
            return run("openssl", "dgst", f"-sha{alg[2:]}", "-sign", str(key), "-sigopt",
                       "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", data=data)
        if alg.startswith("ES"):
            der = run("openssl", "dgst", f"-sha{alg[2:]}", "-sign", str(key), data=data)
            return der_to_raw(der, 32 if alg == "ES256" else 48)
        msg = tmp_path / "msg"
        msg.write_bytes(data)
        return run("openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(key), "-in", str(msg))

    keys = {"rsa": rsa, "ec256": ec256, "ec384": ec384, "ed": ed}
    algs = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa",
            "PS512": "rsa", "ES256": "ec256", "ES384": "ec384", "EdDSA": "ed"}
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, [
        jwt_route("all", "/", {"algorithms": list(algs)})])
    cfg["consumers"] = [{"name": alg, "credentials": {"jwt": [{
        "key": alg, "algorithm": alg, "public_key": pub(keys[k])}]}} for alg, k in algs.items()]
    p = portico(config=cfg)
    claims = b64url(json.dumps({"exp": int(time.time()) + 60}).encode())
    for alg, k in algs.items():
        head = b64url(json.dumps({"alg": alg, "kid": alg}).encode())
        sig = sign(alg, keys[k], f"{head}.{claims}".encode())
        token = f"{head}.{claims}.{b64url(sig)}"
        s, _, _ = request(p.port, "GET", "/", headers={"Authorization": "Bearer " + token})
        assert s == 200, alg
        assert u.requests[-1].header("x-consumer-name") == alg
        bad = f"{head}.{claims}.{b64url(bytes(len(sig)))}"
        assert request(p.port, "GET", "/", headers={"Authorization": "Bearer " + bad})[0] == 401, alg
