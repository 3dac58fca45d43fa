"""Request path v2 with the real binary: upstream calls from filters (traffic-mirror, ext-auth
through an upstream), response body transforms (body-rewrite) over every protocol pair and for
local replies, the transform's size limit, a 1 GiB body streamed through a transform, and a
client that leaves while a filter awaits its call."""
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import conftest
from conftest import free_port, refused_port, raw, request, statuses, wait_for


def curl(port, path, *args, http2=False, max_time=10, input_bytes=None):
    """(status, headers dict, body bytes) through curl, HTTP/1.1 or h2c prior knowledge."""
    flag = "--http2-prior-knowledge" if http2 else "--http1.1"
    r = subprocess.run(["curl", "-sS", "--max-time", str(max_time), flag, *args, "-D", "-",
                        f"http://127.0.0.1:{port}{path}"], capture_output=True, input=input_bytes,
                       timeout=max_time + 10)
    assert r.returncode == 0, r.stderr
    status, fields, body = conftest.split_curl_output(r.stdout)
    return status, dict(fields), body  # a repeated header: its last value


class Blackhole:
    """Accepts connections and never answers; notes when each peer closes its side."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.requests = []
        self.closed_at = []
        self.conns = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self._watch, args=(c,), daemon=True).start()

    def _watch(self, c):
        data = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data and not self.requests[-1:] == [data]:
                    self.requests.append(data)
        except OSError:
            pass
        self.closed_at.append(time.monotonic())

    def stop(self):
        self.running = False
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def blackhole():
    b = Blackhole()
    yield b
    b.stop()


def test_mirror_gets_the_same_request_and_never_delays_the_client(portico, upstreams, blackhole):
    main, mirror = upstreams("main"), upstreams("mirror")
    p = portico(
        upstreams={"main": [main.address], "mirror": [mirror.address],
                   "slow": [blackhole.address], "dead": [f"127.0.0.1:{refused_port()}"]},
        routes=[{"name": "api", "match": {"path_prefix": "/api"}, "upstream": "main",
                 "strip_prefix": True,
                 "plugins": [{"name": "traffic-mirror", "config": {"upstream": "mirror"}}]},
                {"name": "slow", "match": {"path_prefix": "/slow"}, "upstream": "main",
                 "plugins": [{"name": "traffic-mirror",
                              "config": {"upstream": "slow", "max_in_flight": 2}}]},
                {"name": "dead", "match": {"path_prefix": "/dead"}, "upstream": "main",
                 "plugins": [{"name": "traffic-mirror", "config": {"upstream": "dead"}}]},
                {"name": "half", "match": {"path_prefix": "/half"}, "upstream": "main",
                 "plugins": [{"name": "traffic-mirror",
                              "config": {"upstream": "mirror", "fraction": 0.5}}]}])
    body = bytes(range(256)) * 40
    s, h, out = request(p.port, "POST", "/api/items/1?q=1",
                        headers={"X-Custom": "yes", "Content-Type": "application/octet-stream"},
                        body=body)
    assert s == 200 and json.loads(out)["target"] == "/items/1?q=1"
    wait_for(lambda: len(mirror.requests) == 1, timeout=5, what="the mirrored request")
    m, o = mirror.requests[0], main.requests[-1]
    assert (m.method, m.target) == ("POST", "/items/1?q=1") == (o.method, o.target)
    assert m.header("x-custom") == "yes" and m.header("host") == o.header("host")
    assert m.header("x-request-id") == h["x-request-id"]
    assert m.body_len == len(body) and m.body_prefix == body[:len(m.body_prefix)]
    # Without a body too (GET): mirrored once, after the path rewrite.
    assert request(p.port, "GET", "/api/x")[0] == 200
    wait_for(lambda: len(mirror.requests) == 2, timeout=5, what="the mirrored GET")
    assert (mirror.requests[1].method, mirror.requests[1].target) == ("GET", "/x")

    # A large body streams to the copy as it is forwarded (chunked here, as the client sent it).
    big = bytes(range(256)) * 12288  # 3 MiB
    s, _, out = curl(p.port, "/api/upload", "--data-binary", "@-", "-H",
                     "Transfer-Encoding: chunked", "-H", "Expect:", input_bytes=big)
    assert s == 200 and json.loads(out)["body_len"] == len(big)
    wait_for(lambda: len(mirror.requests) == 3, timeout=5, what="the streamed copy")
    assert mirror.requests[2].body_len == len(big)
    assert mirror.requests[2].body_prefix == big[:len(mirror.requests[2].body_prefix)]

    # A mirror that never answers, or is down, changes nothing for the client.
    for path in ("/slow/a", "/dead/a"):
        for _ in range(5):
            start = time.monotonic()
            assert request(p.port, "GET", path)[0] == 200
            assert time.monotonic() - start < 0.5
    wait_for(lambda: blackhole.accepted == 2, timeout=5, what="two copies in flight")
    # Past max_in_flight (2), copies are dropped and counted.
    wait_for(lambda: p.metric("portico_upstream_mirror_dropped_total", 'upstream="slow"') == 3,
             timeout=5, what="dropped copies counted")
    assert p.metric("portico_upstream_mirror_requests_total", 'upstream="mirror"') == 3

    # fraction 0.5: about half of 200 requests are mirrored.
    before = len(mirror.requests)
    for _ in range(200):
        request(p.port, "GET", "/half/x")
    wait_for(lambda: p.metric("portico_upstream_mirror_requests_total", 'upstream="mirror"')
             == 3 + len(mirror.requests) - before, timeout=5, what="mirrors settled")
    assert 60 <= len(mirror.requests) - before <= 140


def test_ext_auth_through_an_upstream_with_a_dead_target(portico, upstreams):
    from test_token_auth import AuthService
    auth = AuthService()
    try:
        u = upstreams()
        auth_addr = auth.url.split("//")[1].split("/")[0]
        dead = f"127.0.0.1:{refused_port()}"
        p = portico(
            upstreams={"svc": [u.address],
                       "auth-svc": {"targets": [dead, auth_addr], "retries": {"attempts": 2}}},
            routes=[{"name": "ext", "match": {"path_prefix": "/api"}, "upstream": "svc",
                     "plugins": [{"name": "ext-auth", "config": {
                         "upstream": "auth-svc", "path": "/auth",
                         "request_headers": ["Authorization"], "upstream_headers": ["X-User"]}}]}])
        for i in range(10):
            s, _, _ = request(p.port, "GET", f"/api/items/{i}?x=1",
                              headers={"Authorization": "Bearer good"})
            assert s == 200
            assert auth.calls[-1][:2] == ("GET", f"/auth/api/items/{i}?x=1")
            sent = auth.calls[-1][2]
            assert sent["X-Forwarded-Host"] == f"127.0.0.1:{p.port}"
            assert sent["X-Forwarded-For"] == "127.0.0.1" and sent["X-Forwarded-Method"] == "GET"
            assert u.requests[-1].header("x-user") == "u-42"
        s, _, body = request(p.port, "GET", "/api/x", headers={"Authorization": "Bearer bad"})
        assert s == 401 and json.loads(body) == {"error": "go away"}
        assert p.metric("portico_upstream_calls_total", 'upstream="auth-svc"') == 11
        # Half the first attempts went to the dead target and were retried on the live one.
        assert p.metric("portico_upstream_retries_total", 'upstream="auth-svc"') >= 3
    finally:
        auth.stop()


def test_ext_auth_upstream_must_exist(portico, upstreams, tmp_path):
    from conftest import base_config, validate
    cfg = base_config(free_port(), free_port(), {"svc": ["127.0.0.1:1"]}, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "ext-auth", "config": {"upstream": "nope"}},
                     {"name": "traffic-mirror", "config": {"upstream": "gone"}}]}])
    code, out = validate(cfg, tmp_path)
    assert code == 1
    assert 'routes[0].plugins[0].config.upstream: unknown upstream "nope"' in out
    assert 'routes[0].plugins[1].config.upstream: unknown upstream "gone"' in out


def test_client_leaving_cancels_the_call_it_waits_for(portico, upstreams, blackhole):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address], "auth": [blackhole.address]},
                routes=[{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                         "plugins": [{"name": "ext-auth",
                                      "config": {"upstream": "auth", "timeout": "30s"}}]}])
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as c:
        c.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: blackhole.requests, timeout=5, what="the call reaching the service")
        left = time.monotonic()
    # The call's connection closes soon after the client's, not at the 30 s timeout.
    wait_for(lambda: blackhole.closed_at, timeout=3, what="the call cancelled")
    assert blackhole.closed_at[0] - left < 1.0
    assert u.requests == []
    wait_for(lambda: p.metric("portico_requests_total", 'route="r",code="4xx"') == 1,
             timeout=3, what="the request counted as 499")


def h2c_relay(portico, upstream):
    """A second Portico serving h2c in front of `upstream`: an HTTP/2 upstream for the first."""
    return portico(upstreams={"svc": [upstream.address]},
                   routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}])


@pytest.mark.parametrize("client_h2", [False, True], ids=["h1-client", "h2-client"])
@pytest.mark.parametrize("upstream_h2", [False, True], ids=["h1-upstream", "h2-upstream"])
def test_body_rewrite_on_every_protocol_pair(portico, upstreams, client_h2, upstream_h2):
    u = upstreams()
    if upstream_h2:
        relay = h2c_relay(portico, u)
        up = {"targets": [f"127.0.0.1:{relay.port}"], "protocol": "h2c"}
    else:
        up = [u.address]
    p = portico(upstreams={"svc": up}, routes=[
        {"name": "stream", "match": {"path_prefix": "/s"}, "upstream": "svc", "strip_prefix": True,
         "plugins": [{"name": "body-rewrite",
                      "config": {"response": {"replace": [{"from": "xx", "to": "y"}]}}}]},
        {"name": "buffered", "match": {"path_prefix": "/b"}, "upstream": "svc",
         "strip_prefix": True,
         "plugins": [{"name": "body-rewrite", "config": {"response": {
             "mode": "buffered", "max_buffer": "64KiB",
             "replace": [{"from": "\"method\"", "to": "\"verb\""}]}}}]}])
    # 3 MiB of "x" in 1 MiB writes: every pair "xx" becomes "y", across chunk boundaries.
    s, h, body = curl(p.port, "/s/bytes/3145728", http2=client_h2)
    assert s == 200 and body == b"y" * (3145728 // 2)
    if client_h2:
        assert "content-length" not in h  # the length is unknown until the end: DATA frames
    else:
        assert h.get("transfer-encoding") == "chunked" and "content-length" not in h
    # Buffered: the whole body is known before the head leaves, so its length is exact.
    s, h, body = curl(p.port, "/b/hello", http2=client_h2)
    assert s == 200 and json.loads(body)["verb"] == "GET"
    assert int(h["content-length"]) == len(body)
    # Over max_buffer: never truncated, a 502 JSON error instead.
    s, h, body = curl(p.port, "/b/bytes/100000", http2=client_h2)
    err = json.loads(body)
    assert s == 502 and err["error"] == "response body too large for transformation"
    assert err["request_id"] == h["x-request-id"]


def test_body_rewrite_on_local_replies_and_etags(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=[
        {"name": "mock", "match": {"path": "/mock"},
         "plugins": [{"name": "body-rewrite", "config": {
                         "response": {"replace": [{"from": "world", "to": "there"}]}}},
                     {"name": "static-response", "config": {
                         "status": 200, "body": "hello world", "headers": {"ETag": "\"v1\""}}}]}])
    s, h, body = request(p.port, "GET", "/mock")
    assert s == 200 and body == b"hello there"
    assert h["content-length"] == str(len(body)) and h["etag"] == 'W/"v1"'


@pytest.mark.parametrize("client_h2", [False, True], ids=["h1-client", "h2-client"])
def test_request_body_transform(portico, upstreams, client_h2):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=[
        {"name": "in", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "body-rewrite", "config": {"request": {
             "mode": "buffered", "max_buffer": "64KiB",
             "replace": [{"from": "secret", "to": "[redacted]"}]}}}]}])
    body = b"a secret, and another secret " * 100
    expected = body.replace(b"secret", b"[redacted]")
    # With a length, and chunked (HTTP/1.1) or in DATA frames without one (HTTP/2).
    for extra in ([], ["-H", "Transfer-Encoding: chunked"] if not client_h2 else []):
        s, _, out = curl(p.port, "/post", "--data-binary", "@-", *extra, http2=client_h2,
                         input_bytes=body)
        assert s == 200
        seen = u.requests[-1]
        assert seen.header("content-length") == str(len(expected))
        assert seen.header("transfer-encoding") is None
        assert seen.body_len == len(expected) and seen.body_prefix == expected[:len(seen.body_prefix)]
    # Over the transform's limit: refused, nothing forwarded.
    n = len(u.requests)
    s, _, out = curl(p.port, "/post", "--data-binary", "@-", http2=client_h2,
                     input_bytes=b"x" * 70000)
    assert s == 413 and json.loads(out)["error"] == "request body too large for transformation"
    assert len(u.requests) == n


@pytest.mark.heavy
def test_one_gib_through_a_streaming_transform_in_bounded_memory(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=[
        {"name": "pass", "match": {"path_prefix": "/"}, "upstream": "svc",
         "plugins": [{"name": "body-rewrite", "config": {"response": {"replace": []}}}]}])
    size = 1 << 30
    r = subprocess.run(["curl", "-sS", "--max-time", "120", "-o", "/dev/null", "-w",
                        "%{http_code} %{size_download}", f"http://127.0.0.1:{p.port}/bytes/{size}"],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["200", str(size)]
    peak = 0
    for line in Path(f"/proc/{p.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    print(f"peak RSS after 1 GiB through a streaming transform: {peak} KiB")
    assert 0 < peak < 64 * 1024, f"peak RSS {peak} KiB"
