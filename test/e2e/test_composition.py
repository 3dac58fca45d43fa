"""Flows with the real binary against real JSON backends: aggregation in parallel, chains,
for_each within its concurrency, deterministic merges, partial answers, internal routes, and
config errors."""
import json
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import PORTICO_BIN, request
from json_service import JsonService


@pytest.fixture
def services():
    started = []

    def make(name="svc", **kw):
        s = JsonService(name, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def flow_route(calls, path="/composed", respond=None, **extra):
    flow = {"calls": calls}
    if respond is not None:
        flow["respond"] = respond
    flow.update(extra.pop("flow_extra", {}))
    return {"name": extra.pop("name", "composed"), "match": {"path": path}, "flow": flow, **extra}


def timed(port, path, headers=None, method="GET", body=None):
    start = time.monotonic()
    status, h, data = request(port, method, path, headers, body)
    return (time.monotonic() - start) * 1000, status, h, data


def test_three_backends_aggregate_in_parallel(portico, services):
    a, b, c = services("a"), services("b"), services("c")
    p = portico(upstreams={"a": [a.address], "b": [b.address], "c": [c.address]},
                routes=[flow_route([
                    {"name": "a", "upstream": "a", "path": "/x?delay=50"},
                    {"name": "b", "upstream": "b", "path": "/x?delay=100"},
                    {"name": "c", "upstream": "c", "path": "/x?delay=150"}])])
    times = []
    for _ in range(100):
        ms, status, h, data = timed(p.port, "/composed")
        assert status == 200, data
        times.append(ms)
    doc = json.loads(data)
    assert set(doc) == {"a", "b", "c"}  # each backend's object merged in
    assert h["content-type"] == "application/json" and "portico-completed" not in h
    p50 = statistics.median(times)
    print(f"aggregation of 50/100/150 ms backends: p50 {p50:.1f} ms")
    assert p50 <= 170, times


def test_chain_then_fan_out(portico, services):
    s = services("s")
    p = portico(upstreams={"s": [s.address]}, routes=[flow_route([
        {"name": "a", "upstream": "s", "path": "/a?delay=50"},
        {"name": "b", "upstream": "s", "path": "/b?delay=50&from={a.body.s.path}", "group": "b"},
        {"name": "c", "upstream": "s", "path": "/c?delay=50&from={a.body.s.path}", "group": "c"}])])
    times = [timed(p.port, "/composed")[0] for _ in range(30)]
    _, status, _, data = timed(p.port, "/composed")
    doc = json.loads(data)
    assert status == 200
    assert doc["b"]["s"]["query"]["from"] == "/a" and doc["c"]["s"]["query"]["from"] == "/a"
    p50 = statistics.median(times)
    print(f"A(50 ms) -> {{B, C}}(50 ms): p50 {p50:.1f} ms")
    assert p50 <= 120, times


def test_chaining_carries_fields_in_path_header_query_and_body(portico, services):
    users, orders = services("users"), services("orders")
    p = portico(upstreams={"users": [users.address], "orders": [orders.address]}, routes=[
        flow_route([
            {"name": "user", "upstream": "users", "path": "/v1/users/{request.path.id}",
             "query": {"lang": "{request.query.lang}", "absent": "{request.query.nope}"},
             "headers": {"X-Tenant": "{request.header.x-tenant}"}},
            {"name": "orders", "upstream": "orders", "method": "POST",
             "path": "/v1/orders/{user.body.users.path}",
             "headers": {"X-From-User": "{user.body.users.headers.x-tenant}"},
             "body": {"user": "{user.body.users}", "lang": "{user.body.users.query.lang}",
                      "label": "user {request.path.id} in {user.body.users.query.lang}"}}],
            path="/profile/{id}",
            respond={"body": {"user": "{user.body.users.path}", "order": "{orders.body}"},
                     "headers": {"Cache-Control": "private, max-age=10"}})])
    status, h, data = request(p.port, "GET", "/profile/42?lang=fr", {"X-Tenant": "acme"})
    assert status == 200, data
    assert h["cache-control"] == "private, max-age=10"
    doc = json.loads(data)
    assert doc["user"] == "/v1/users/42"
    sent = users.requests[-1]
    assert sent["query"] == {"lang": "fr"}  # a null value drops the key
    assert sent["headers"]["x-tenant"] == "acme"
    got = orders.requests[-1]
    assert got["method"] == "POST"
    assert got["path"] == "/v1/orders/%2Fv1%2Fusers%2F42"  # values are URL-encoded in paths
    assert got["headers"]["x-from-user"] == "acme"
    assert got["headers"]["content-type"] == "application/json"
    body = json.loads(got["body"])
    assert body["user"]["path"] == "/v1/users/42"  # a whole reference keeps its JSON type
    assert body["lang"] == "fr"
    assert body["label"] == "user 42 in fr"
    assert doc["order"]["orders"]["body"] == body


def test_path_parameters_are_encoded_once_and_never_climb(portico, services):
    # The client's `%20` reaches the service as `%20` (it was `%2520`: the raw capture encoded
    # again), templates in bodies see the decoded value, and a value that is all dots is not
    # sent as a segment that climbs to another endpoint of the service.
    users = services("users")
    p = portico(upstreams={"users": [users.address]}, routes=[flow_route([
        {"name": "user", "upstream": "users", "method": "POST",
         "path": "/v1/users/{request.path.id}/{request.query.view}",
         "body": {"id": "{request.path.id}"}}],
        path="/profile/{id}")])
    status, _, data = request(p.port, "GET", "/profile/j%C3%B6rg%20k?view=card")
    assert status == 200, data
    got = users.requests[-1]
    assert got["path"] == "/v1/users/j%C3%B6rg%20k/card"
    assert json.loads(got["body"]) == {"id": "j\u00f6rg k"}
    sent = len(users.requests)
    for climbing in ["..", "%2E%2E", "%2e"]:
        status, _, data = request(p.port, "GET", "/profile/x?view=" + climbing)
        assert status == 502, (climbing, data)
        assert "a value gave a . or .. segment" in json.loads(data)["error"], data
    assert len(users.requests) == sent


def test_pipe_forwards_the_body_through_two_services(portico, services):
    a, b = services("a"), services("b")
    p = portico(upstreams={"a": [a.address], "b": [b.address]}, routes=[flow_route([
        {"name": "a", "upstream": "a", "method": "POST", "path": "/first", "forward_body": True},
        {"name": "b", "upstream": "b", "method": "POST", "path": "/second", "body": "{a.body}"}],
        respond={"body": "{b.body}"})])
    status, _, data = request(p.port, "POST", "/composed", {"Content-Type": "application/json"},
                              json.dumps({"q": 1}).encode())
    assert status == 200, data
    doc = json.loads(data)
    assert doc["b"]["body"]["a"]["body"] == {"q": 1}
    assert json.loads(a.requests[-1]["body"]) == {"q": 1}


def test_for_each_respects_its_concurrency(portico, services):
    s = services("s")
    p = portico(upstreams={"s": [s.address]}, routes=[flow_route([
        {"name": "list", "upstream": "s", "path": "/items/50"},
        {"name": "items", "upstream": "s", "path": "/item/{item.sku}?delay=20",
         "for_each": "{list.body.items}", "concurrency": 10, "required": False}],
        respond={"body": {"prices": "{items[*].body.price}", "first": "{items[0].body.sku}"}})])
    timed(p.port, "/composed")  # connections warm
    s.max_in_flight = 0
    runs = [timed(p.port, "/composed") for _ in range(5)]
    for _, status, _, data in runs:
        assert status == 200, data
    doc = json.loads(runs[-1][3])
    assert len(doc["prices"]) == 50 and doc["prices"][0] == 2 and doc["first"] == "s0"
    ms = statistics.median(r[0] for r in runs)
    print(f"for_each over 50 items, concurrency 10, 20 ms backend: median {ms:.1f} ms of 5, "
          f"at most {s.max_in_flight} at once")
    assert s.max_in_flight <= 10
    assert ms <= 150


def test_merge_is_in_declared_order_whatever_the_arrival(portico, services):
    s = services("same")  # every call answers {"same": ...}: each overwrites the last
    calls = [{"name": f"c{i}", "upstream": "s", "path": f"/p/c{i}?delay=rand:8"} for i in range(4)]
    p = portico(upstreams={"s": [s.address]},
                routes=[flow_route(calls),
                        flow_route(calls, name="strict", path="/strict",
                                   respond={"merge": "error"})])
    with ThreadPoolExecutor(8) as pool:
        bodies = set(pool.map(lambda _: request(p.port, "GET", "/composed")[2], range(500)))
    assert len(bodies) == 1  # byte-identical
    assert json.loads(bodies.pop())["same"]["path"] == "/p/c3"  # the last declared call wins
    status, _, data = request(p.port, "GET", "/strict")
    assert status == 502
    assert 'key \\"same\\" set by calls \\"c0\\" and \\"c1\\"' in data.decode()


def test_partial_answers_and_required_failures(portico, services):
    s = services("s")
    p = portico(upstreams={"s": [s.address]}, routes=[
        flow_route([{"name": "ok", "upstream": "s", "path": "/ok"},
                    {"name": "extra", "upstream": "s", "path": "/x?status=500", "required": False,
                     "group": "extra"}]),
        flow_route([{"name": "ok", "upstream": "s", "path": "/ok"},
                    {"name": "must", "upstream": "s", "path": "/x?status=500"}],
                   name="req", path="/required"),
        flow_route([{"name": "must", "upstream": "s", "path": "/x?status=404",
                     "propagate_status": True}], name="prop", path="/propagate"),
        flow_route([{"name": "empty", "upstream": "s", "path": "/x?status=204"},
                    {"name": "bad", "upstream": "s", "path": "/badjson", "required": False},
                    {"name": "text", "upstream": "s", "path": "/text", "group": "t"}],
                   name="kinds", path="/kinds")])
    status, h, data = request(p.port, "GET", "/composed")
    assert status == 200 and h["portico-completed"] == "false"
    doc = json.loads(data)
    assert doc["extra"] is None and "s" in doc
    status, h, data = request(p.port, "GET", "/required")
    err = json.loads(data)
    assert status == 502 and 'call "must" failed' in err["error"] and err["request_id"]
    assert request(p.port, "GET", "/propagate")[0] == 404
    status, h, data = request(p.port, "GET", "/kinds")
    assert status == 200, data  # a 204 is an answer (null), never a 500
    assert h["portico-completed"] == "false"  # the malformed JSON answer failed its call
    assert json.loads(data) == {"t": "plain words"}


def test_internal_route_is_hidden_but_callable_from_a_flow(portico, services):
    s = services("inner")
    p = portico(upstreams={"s": [s.address]}, routes=[
        {"name": "hidden", "internal": True, "match": {"path": "/hidden/{id}", "methods": ["GET"]},
         "rewrite": "/svc/{id}", "upstream": "s",
         "plugins": [{"name": "headers", "config": {"request": {"set": {"X-Inner": "yes"}}}}]},
        {"name": "other", "match": {"path": "/hidden/{id}", "methods": ["POST"]},
         "upstream": "s"},
        flow_route([{"name": "h", "route": "hidden", "path": "/hidden/{request.path.id}"}],
                   path="/via/{id}")])
    status, h, _ = request(p.port, "GET", "/hidden/7")
    assert status == 405 and h["allow"] == "POST"  # the internal route's GET is not offered
    status, _, data = request(p.port, "GET", "/via/7")
    assert status == 200, data
    doc = json.loads(data)
    assert doc["inner"]["path"] == "/svc/7" and doc["inner"]["headers"]["x-inner"] == "yes"
    p2_status = request(p.port, "DELETE", "/nothing")[0]
    assert p2_status == 404


def test_http2_client_gets_the_composed_answer(portico, services):
    s = services("s")
    p = portico(upstreams={"s": [s.address]},
                routes=[flow_route([{"name": "a", "upstream": "s", "path": "/a"}])])
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                        f"http://127.0.0.1:{p.port}/composed"], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["s"]["path"] == "/a"


def validate(tmp_path, text):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = subprocess.run([PORTICO_BIN, "validate", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0
    return r.stdout + r.stderr


def test_flow_config_errors_name_path_and_line(tmp_path):
    out = validate(tmp_path, """version: 1
listeners: [ { name: m, listen: "127.0.0.1:1" } ]
upstreams: [ { name: s, targets: [ "127.0.0.1:9" ] } ]
routes:
  - name: both
    match: { path: /both }
    upstream: s
    flow: { calls: [ { name: a, upstream: s } ] }
""")
    assert 'route "both" has both upstream and flow' in out and "bad.yaml:5" in out, out
    out = validate(tmp_path, """version: 1
listeners: [ { name: m, listen: "127.0.0.1:1" } ]
upstreams: [ { name: s, targets: [ "127.0.0.1:9" ] } ]
routes:
  - name: plain
    match: { path: /plain }
    upstream: s
  - name: loop
    match: { path: /loop }
    flow:
      calls:
        - { name: a, upstream: s, path: "/a/{b.body.x}" }
        - { name: b, upstream: s, path: "/b/{a.body.x}" }
        - { name: c, upstream: s, path: "/c/{nobody.status}" }
        - { name: d, upstream: nowhere }
        - { name: e, route: plain }
        - { name: f, upstream: s, path: "/f/{item.x}" }
        - { name: g, upstream: s, path: "/g/{request.bogus}" }
""")
    for expected in ["is part of a cycle", 'no call named "nobody"', 'unknown upstream "nowhere"',
                     'no internal route "plain"', "item is only known inside for_each",
                     "{request.bogus}", "bad.yaml:13"]:
        assert expected in out, out


def test_pipe_through_an_external_https_provider(portico, services, tmp_path):
    import ssl
    from certs import Pki
    pki = Pki(tmp_path / "pki")
    cert, key = pki.issue("provider", "localhost", dns=["localhost"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    provider = services("provider", tls_context=ctx)
    inner = services("inner")
    ca = str(pki.dir / "ca.pem")
    p = portico(upstreams={"inner": [inner.address]}, routes=[flow_route([
        {"name": "a", "upstream": "inner", "method": "POST", "path": "/enrich",
         "forward_body": True},
        {"name": "b", "url": f"https://localhost:{provider.port}/v1/score", "method": "POST",
         "body": "{a.body}", "headers": {"X-Key": "{request.header.x-provider-key}"},
         "tls": {"ca": ca}},
        {"name": "untrusted", "url": f"https://localhost:{provider.port}/v1/score",
         "required": False, "group": "untrusted"}],
        respond={"body": {"score": "{b.body}", "untrusted": "{untrusted.status}"}})])
    status, h, data = request(p.port, "POST", "/composed",
                              {"Content-Type": "application/json", "X-Provider-Key": "k1",
                               "Authorization": "Bearer client-secret"},
                              json.dumps({"q": 1}).encode())
    assert status == 200, data
    doc = json.loads(data)
    assert doc["score"]["provider"]["body"]["inner"]["body"] == {"q": 1}
    assert doc["untrusted"] is None  # the system CAs do not know the test CA: the call failed
    assert h["portico-completed"] == "false"
    sent = provider.requests[-1]["headers"]
    assert sent["x-key"] == "k1"
    assert "authorization" not in sent  # no client credential unless a template names it
