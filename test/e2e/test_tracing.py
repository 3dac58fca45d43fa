"""Tracing: W3C traceparent continued (not replaced), spans for the request, each upstream
attempt (a retry included) and the Redis call of a rate limit, exported as OTLP/HTTP JSON to
a test receiver, with the right parent/child links."""
import http.server
import json
import threading
import time

import pytest

from conftest import base_config, free_port, refused_port, request, wait_for
from redis_server import RedisServer


class OtlpReceiver:
    def __init__(self):
        self.spans = []
        spans = self.spans

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                for rs in body["resourceSpans"]:
                    service = rs["resource"]["attributes"][0]["value"]["stringValue"]
                    for ss in rs["scopeSpans"]:
                        for s in ss["spans"]:
                            s["service"] = service
                            s["attrs"] = {a["key"]: list(a["value"].values())[0]
                                          for a in s["attributes"]}
                            spans.append(s)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def otlp():
    r = OtlpReceiver()
    yield r
    r.stop()


def traced_gateway(portico, u, otlp, sampling, redis=None, targets=None):
    plugins = [{"name": "key-auth"}]
    if redis:
        plugins.append({"name": "rate-limit", "config": {
            "limits": [{"requests": 100, "per": "10s"}], "backend": "redis",
            "redis": {"address": redis.address}}})
    cfg = base_config(free_port(), free_port(),
                      {"svc": {"targets": targets or [u.address],
                               "retries": {"attempts": 2, "backoff_base": "1ms"},
                               "balance": "round_robin"}},
                      [{"name": "orders", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": plugins}],
                      server={"workers": 1, "tracing": {"endpoint": otlp.url,
                                                        "sampling": sampling,
                                                        "flush_interval": "100ms",
                                                        "service_name": "edge"}})
    cfg["consumers"] = [{"name": "alice", "credentials": {"key-auth": [{"key": "k-alice-123456"}]}}]
    return portico(config=cfg)


def test_client_trace_is_continued_through_auth_retry_and_redis(portico, upstreams, otlp,
                                                                 tmp_path):
    u = upstreams()
    redis = RedisServer(tmp_path / "redis", free_port())
    dead = f"127.0.0.1:{refused_port()}"
    try:
        # Round robin starts with the dead target: the first attempt fails, the retry succeeds.
        p = traced_gateway(portico, u, otlp, 0.0, redis=redis, targets=[dead, u.address])
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent = "00f067aa0ba902b7"
        status, _, _ = request(p.port, "GET", "/orders/1", {
            "traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "vendor=x",
            "apikey": "k-alice-123456"})
        assert status == 200
        wait_for(lambda: len(otlp.spans) >= 4, timeout=5, what="4 spans exported")
        spans = {s["name"]: s for s in otlp.spans}
        assert all(s["traceId"] == trace_id for s in otlp.spans)  # continued, not replaced
        assert all(s["service"] == "edge" for s in otlp.spans)
        server = spans["GET orders"]
        assert server["kind"] == 2 and server["parentSpanId"] == parent
        assert server["attrs"]["http.response.status_code"] == "200"
        assert server["attrs"]["portico.consumer"] == "alice"
        attempts = sorted((s for s in otlp.spans if s["name"] == "upstream svc"),
                          key=lambda s: int(s["attrs"]["portico.attempt"]))
        assert len(attempts) == 2
        assert all(a["parentSpanId"] == server["spanId"] and a["kind"] == 3 for a in attempts)
        assert attempts[0]["attrs"]["error.type"] == "connect_failed"
        assert attempts[0]["status"]["code"] == 2
        assert attempts[1]["attrs"]["http.response.status_code"] == "200"
        rl = spans["rate-limit redis"]
        assert rl["parentSpanId"] == server["spanId"] and rl["attrs"]["db.system"] == "redis"
        for s in otlp.spans:
            assert int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"])
        # The upstream got the trace with the successful attempt as its parent.
        seen = u.requests[-1]
        assert seen.header("traceparent") == f"00-{trace_id}-{attempts[1]['spanId']}-01"
        assert seen.header("tracestate") == "vendor=x"
    finally:
        redis.stop()


def test_sampling_ratio_and_unsampled_parent(portico, upstreams, otlp):
    u = upstreams()
    p = traced_gateway(portico, u, otlp, 0.0)
    headers = {"apikey": "k-alice-123456"}
    # Ratio 0, no parent: nothing recorded, no traceparent invented.
    assert request(p.port, "GET", "/a", headers)[0] == 200
    assert u.requests[-1].header("traceparent") is None
    # An unsampled parent is forwarded untouched and not recorded.
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    assert request(p.port, "GET", "/b", {**headers, "traceparent": unsampled})[0] == 200
    assert u.requests[-1].header("traceparent") == unsampled
    time.sleep(0.4)
    assert otlp.spans == []


def test_new_traces_at_ratio_one(portico, upstreams, otlp):
    u = upstreams()
    p = traced_gateway(portico, u, otlp, 1.0)
    for _ in range(3):
        assert request(p.port, "GET", "/n", {"apikey": "k-alice-123456"})[0] == 200
    wait_for(lambda: len(otlp.spans) >= 6, timeout=5, what="6 spans")
    servers = [s for s in otlp.spans if s["kind"] == 2]
    assert len(servers) == 3 and len({s["traceId"] for s in servers}) == 3
    assert all("parentSpanId" not in s for s in servers)  # roots
    sent = u.requests[-1].header("traceparent")
    assert sent.startswith("00-") and sent.endswith("-01")
    wait_for(lambda: p.metric("portico_tracing_spans_exported_total") >= 6, timeout=5,
             what="exports counted")
    assert p.metric("portico_tracing_spans_dropped_total") == 0


class Introspector:
    """An OAuth2 introspection endpoint: every token is active; records the traceparent."""

    def __init__(self):
        self.traceparents = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.traceparents.append(self.headers.get("traceparent"))
                body = json.dumps({"active": True, "sub": "svc-account"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_auth_callouts_get_client_spans(portico, upstreams, otlp, tmp_path):
    from test_token_auth import AuthService, LocalJwks
    u = upstreams()
    auth, idp, jwks = AuthService(), Introspector(), LocalJwks(tmp_path)
    # Two routes on one key source: "warm" loads it, "jwt" is the one under test.
    jwt = {"name": "jwt", "config": {"jwks_uri": jwks.url, "jwks_min_refetch": "0s"}}
    try:
        cfg = base_config(
            free_port(), free_port(), {"svc": [u.address]},
            [{"name": "ext", "match": {"path_prefix": "/ext"}, "upstream": "svc",
              "plugins": [{"name": "ext-auth", "config": {
                  "url": auth.url, "request_headers": ["authorization"]}}]},
             {"name": "opaque", "match": {"path_prefix": "/opaque"}, "upstream": "svc",
              "plugins": [{"name": "oauth2-introspection", "config": {"endpoint": idp.url}}]},
             {"name": "jwt", "match": {"path_prefix": "/jwt"}, "upstream": "svc",
              "plugins": [jwt]},
             {"name": "warm", "match": {"path_prefix": "/warm"}, "upstream": "svc",
              "plugins": [jwt]}],
            server={"workers": 1, "tracing": {"endpoint": otlp.url, "sampling": 1.0,
                                              "flush_interval": "100ms"}})
        p = portico(config=cfg)
        assert request(p.port, "GET", "/ext/1", {"authorization": "Bearer good"})[0] == 200
        assert request(p.port, "GET", "/opaque/1", {"authorization": "Bearer opaque-1"})[0] == 200
        # The key set is the process's, per URI: a valid token on another route waits for its
        # first fetch, so that the next request's wait is the unknown kid's (a request that
        # came before the first fetch ended would wait for that one, "jwt keys: first fetch").
        valid = jwks.sign({"sub": "x", "exp": int(time.time()) + 60})
        assert request(p.port, "GET", "/warm/1", {"authorization": f"Bearer {valid}"})[0] == 200
        # A kid the key set does not have: the request waits for a fresh JWKS fetch.
        rotated = jwks.sign({"sub": "x", "exp": int(time.time()) + 60}, kid="rotated")
        assert request(p.port, "GET", "/jwt/1", {"authorization": f"Bearer {rotated}"})[0] == 401

        # Each request's server span ends after its answer went out, so a flush can carry a
        # call-out span without its server span: wait for every span the checks read.
        def exported():
            spans = {s["name"]: s for s in otlp.spans}
            routes = {s["attrs"].get("http.route") for s in otlp.spans if s["kind"] == 2}
            callouts = ("ext-auth", "oauth2-introspection", "jwt keys: unknown kid")
            return (all(name in spans for name in callouts) and
                    {"ext", "opaque", "jwt"} <= routes and
                    all(child_of(spans[name]) for name in callouts[:2]))

        def child_of(parent):
            return next((s for s in otlp.spans if s.get("parentSpanId") == parent["spanId"]), None)

        def seen():
            return ("the call-out spans, their attempts and servers; exported: " +
                    ", ".join(f"{s['name']} ({s['spanId']} <- {s.get('parentSpanId')})"
                              for s in otlp.spans))

        wait_for(exported, timeout=5, what=seen)
        servers = {s["attrs"]["http.route"]: s for s in otlp.spans if s["kind"] == 2}
        spans = {s["name"]: s for s in otlp.spans}

        ext = spans["ext-auth"]
        assert ext["kind"] == 3 and ext["parentSpanId"] == servers["ext"]["spanId"]
        assert ext["traceId"] == servers["ext"]["traceId"]
        assert ext["attrs"]["url.full"] == auth.url + "/ext/1"
        assert ext["attrs"]["http.response.status_code"] == "200"
        # The call ran on the upstream-call engine: its attempt is a child of the ext-auth
        # span, and the authorization service got the trace with that attempt as its parent.
        attempt = child_of(ext)
        assert attempt["kind"] == 3 and attempt["attrs"]["portico.attempt"] == "1"
        sent = auth.calls[-1][2]["traceparent"]
        assert sent == f"00-{ext['traceId']}-{attempt['spanId']}-01"

        intro = spans["oauth2-introspection"]
        assert intro["parentSpanId"] == servers["opaque"]["spanId"]
        assert intro["attrs"]["url.full"] == idp.url
        intro_attempt = child_of(intro)
        assert idp.traceparents[-1] == f"00-{intro['traceId']}-{intro_attempt['spanId']}-01"

        keys = spans["jwt keys: unknown kid"]
        assert keys["parentSpanId"] == servers["jwt"]["spanId"]
        assert keys["attrs"]["url.full"] == jwks.url and keys["attrs"]["portico.jwt.kid"] == "rotated"
        assert keys["status"]["code"] == 2  # the kid was still not there
    finally:
        auth.stop()
        idp.stop()
        jwks.stop()


def test_a_reload_without_tracing_stops_the_old_exporter(portico, upstreams, otlp):
    """Process-wide objects live while a config uses them: the tracer (and its thread) of a
    config goes when a reload drops tracing; a reload with the same settings keeps it."""
    from pathlib import Path
    import copy
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                      server={"workers": 1, "tracing": {"endpoint": otlp.url, "sampling": 1.0,
                                                        "flush_interval": "100ms"}})
    p = portico(config=cfg)

    def threads():
        return len(list(Path(f"/proc/{p.proc.pid}/task").iterdir()))

    assert request(p.port, "GET", "/a")[0] == 200
    wait_for(lambda: len(otlp.spans) >= 2, timeout=5, what="spans exported")
    traced = threads()
    same = copy.deepcopy(cfg)
    same["routes"][0]["name"] = "r2"  # another config, the same tracing settings
    p.reload(same)
    assert request(p.port, "GET", "/b")[0] == 200
    assert threads() == traced  # the exporter was kept, not started again
    untraced = copy.deepcopy(same)
    del untraced["server"]["tracing"]
    p.reload(untraced)
    wait_for(lambda: threads() == traced - 1, timeout=5, what="the exporter's thread gone")
    assert request(p.port, "GET", "/c")[0] == 200
