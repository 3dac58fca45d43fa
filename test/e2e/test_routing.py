"""Routing, rewrites and forwarded headers, against the real binary."""
import json

from conftest import request


def route(name, match, upstream="svc", **extra):
    return {"name": name, "match": match, "upstream": upstream, **extra}


def echo(port, path, method="GET", headers=None, body=None):
    status, hdrs, data = request(port, method, path, headers=headers, body=body)
    return status, hdrs, (json.loads(data) if data.startswith(b"{") else data)


def test_prefix_exact_template_and_regex(portico, upstreams):
    a, b = upstreams("a"), upstreams("b")
    p = portico(
        upstreams={"a": [a.address], "b": [b.address]},
        routes=[
            route("prefix", {"path_prefix": "/users"}, "a"),
            route("exact", {"path": "/users/me"}, "b"),
            route("template", {"path": "/users/{id}/orders/{order}"}, "b",
                  rewrite="/v2/orders/{order}?user={id}"),
            route("regex", {"path_regex": "/files/(?P<name>[a-z]+)\\.txt"}, "b",
                  rewrite="/blobs/{name}"),
        ])
    assert echo(p.port, "/users/7")[2]["upstream"] == "a"
    assert echo(p.port, "/users")[2]["upstream"] == "a"
    assert echo(p.port, "/users/me")[2]["upstream"] == "b"           # exact beats prefix
    s, _, body = echo(p.port, "/users/7/orders/42?x=1")
    assert body["target"] == "/v2/orders/42?user=7&x=1"
    assert echo(p.port, "/files/report.txt")[2]["target"] == "/blobs/report"
    assert echo(p.port, "/usersX")[0] == 404                           # whole segments only
    s, hdrs, body = request(p.port, "GET", "/nothing")
    assert s == 404
    err = json.loads(body)
    assert err["status"] == 404 and err["request_id"] == hdrs["x-request-id"]


def test_strip_prefix_keeps_query(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[route("api", {"path_prefix": "/api/v1"}, strip_prefix=True)])
    assert echo(p.port, "/api/v1/items/3?q=a%20b")[2]["target"] == "/items/3?q=a%20b"
    assert echo(p.port, "/api/v1")[2]["target"] == "/"


def test_hosts_methods_headers_query_and_priority(portico, upstreams):
    a, b, c = upstreams("a"), upstreams("b"), upstreams("c")
    p = portico(
        upstreams={"a": [a.address], "b": [b.address], "c": [c.address]},
        routes=[
            route("any-host", {"path_prefix": "/"}, "a"),
            route("exact-host", {"hosts": ["api.example.com"], "path_prefix": "/"}, "b"),
            route("wildcard", {"hosts": ["*.example.com"], "path_prefix": "/"}, "c"),
            route("beta", {"path_prefix": "/x", "headers": {"X-Beta": "1"}}, "b"),
            route("q", {"path_prefix": "/x", "query": [{"name": "v", "exact": "2"}]}, "c"),
            route("low", {"path": "/p"}, "a", priority=1),
            route("high", {"path": "/p"}, "b", priority=5),
            route("write", {"path": "/w", "methods": ["POST", "PUT"]}, "b"),
        ])
    assert echo(p.port, "/", headers={"Host": "api.example.com"})[2]["upstream"] == "b"
    assert echo(p.port, "/", headers={"Host": "api.example.com:8080"})[2]["upstream"] == "b"
    assert echo(p.port, "/", headers={"Host": "shop.example.com"})[2]["upstream"] == "c"
    assert echo(p.port, "/", headers={"Host": "example.com"})[2]["upstream"] == "a"
    assert echo(p.port, "/x", headers={"X-Beta": "1"})[2]["upstream"] == "b"
    assert echo(p.port, "/x?v=2")[2]["upstream"] == "c"
    assert echo(p.port, "/x")[2]["upstream"] == "a"
    assert echo(p.port, "/p")[2]["upstream"] == "b"  # priority breaks the tie
    assert echo(p.port, "/w", method="POST", body=b"{}")[2]["upstream"] == "b"
    # The catch-all route takes what /w refuses.
    assert echo(p.port, "/w", method="DELETE")[2]["upstream"] == "a"


def test_method_not_allowed_lists_allowed_methods(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[route("write", {"path": "/w", "methods": ["POST", "PUT"]}),
                        route("read", {"path": "/w", "methods": ["GET"]})])
    s, hdrs, body = request(p.port, "DELETE", "/w")
    assert s == 405 and hdrs["allow"] == "GET, POST, PUT"
    assert json.loads(body)["status"] == 405


def test_forwarded_headers_via_and_request_id(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=[route("all", {"path_prefix": "/"})])
    s, hdrs, body = echo(p.port, "/h", headers={"X-Forwarded-For": "10.1.2.3", "Host": "shop.test"})
    sent = {k.lower(): v for k, v in body["headers"]}
    assert sent["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["x-forwarded-host"] == "shop.test"
    assert sent["via"] == "1.1 portico"
    assert sent["x-request-id"] == hdrs["x-request-id"] and len(hdrs["x-request-id"]) == 32
    assert hdrs["via"] == "1.1 portico"
    # A client's own id travels through unchanged.
    s, hdrs, body = echo(p.port, "/h", headers={"X-Request-Id": "abc-123"})
    assert hdrs["x-request-id"] == "abc-123"
    assert {k.lower(): v for k, v in body["headers"]}["x-request-id"] == "abc-123"


def test_hop_by_hop_headers_are_removed(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=[route("all", {"path_prefix": "/"})])
    s, _, body = echo(p.port, "/hop", headers={
        "Connection": "keep-alive, X-Secret", "X-Secret": "s", "Keep-Alive": "timeout=5",
        "Proxy-Connection": "x", "TE": "trailers", "Upgrade": "foo", "X-Kept": "yes"})
    names = {k.lower() for k, _ in body["headers"]}
    assert "x-kept" in names
    for gone in ("connection", "x-secret", "keep-alive", "proxy-connection", "te", "upgrade"):
        assert gone not in names


def test_consistent_hash_on_header_is_sticky(portico, upstreams):
    ups = [upstreams(f"u{i}") for i in range(3)]
    p = portico(upstreams={"svc": {"targets": [u.address for u in ups],
                                   "balance": "consistent_hash",
                                   "hash": {"on": "header", "name": "X-User"}}},
                routes=[route("all", {"path_prefix": "/"})])
    seen = {}
    for user in range(30):
        for _ in range(3):
            body = echo(p.port, "/", headers={"X-User": f"user-{user}"})[2]
            seen.setdefault(user, set()).add(body["upstream"])
    assert all(len(s) == 1 for s in seen.values())          # each user sticks to one target
    assert len({next(iter(s)) for s in seen.values()}) == 3  # and users spread over all three


def test_round_robin_spreads_by_weight(portico, upstreams):
    a, b = upstreams("a"), upstreams("b")
    p = portico(upstreams={"svc": {"targets": [{"address": a.address, "weight": 3},
                                               {"address": b.address, "weight": 1}]}},
                routes=[route("all", {"path_prefix": "/"})], server={"workers": 1})
    for _ in range(40):
        request(p.port, "GET", "/")
    assert (len(a.requests), len(b.requests)) == (30, 10)


def test_target_given_by_host_name(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [f"localhost:{u.port}"]}, routes=[route("all", {"path_prefix": "/"})])
    assert request(p.port, "GET", "/")[0] == 200


def test_reload_adds_a_listener(portico, upstreams):
    from conftest import base_config, free_port
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [route("all", {"path_prefix": "/"})])
    p = portico(config=cfg)
    extra = free_port()
    cfg["listeners"].append({"name": "second", "listen": f"127.0.0.1:{extra}"})
    p.reload(cfg)
    assert request(extra, "GET", "/")[0] == 200
    assert request(p.port, "GET", "/")[0] == 200
    cfg["listeners"].pop()
    p.reload(cfg)
    import socket
    import pytest
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", extra), timeout=1).close()


def test_preserve_host_false_sends_the_target_host(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [f"localhost:{u.port}"]},
                routes=[route("all", {"path_prefix": "/"}, preserve_host=False)])
    s, _, body = echo(p.port, "/", headers={"Host": "public.example"})
    sent = {k.lower(): v for k, v in body["headers"]}
    assert sent["host"] == f"localhost:{u.port}"
    assert sent["x-forwarded-host"] == "public.example"


def test_every_balance_mode_serves_and_spreads(portico, upstreams):
    ups = [upstreams(f"u{i}") for i in range(3)]
    targets = [u.address for u in ups]
    modes = {
        "least_request": {"balance": "least_request"},
        "random": {"balance": "random"},
        "maglev-cookie": {"balance": "consistent_hash",
                          "hash": {"on": "cookie", "name": "session", "algorithm": "maglev"}},
        "ring-path": {"balance": "consistent_hash", "hash": {"on": "path"}},
        "ring-ip": {"balance": "consistent_hash", "hash": {"on": "ip"}},
    }
    p = portico(upstreams={name: {"targets": targets, **spec} for name, spec in modes.items()},
                routes=[route(name, {"path_prefix": f"/{name}"}, name) for name in modes])
    for name in ("least_request", "random"):
        seen = {echo(p.port, f"/{name}/x")[2]["upstream"] for _ in range(60)}
        assert seen == {"u0", "u1", "u2"}, name
    by_cookie = {}
    for user in range(40):
        got = {echo(p.port, "/maglev-cookie/x", headers={"Cookie": f"a=1; session=s{user}"})[2]
               ["upstream"] for _ in range(3)}
        assert len(got) == 1
        by_cookie[user] = got.pop()
    assert len(set(by_cookie.values())) == 3
    paths = {echo(p.port, f"/ring-path/{i}")[2]["upstream"] for i in range(40)}
    assert len(paths) >= 2
    assert len({echo(p.port, f"/ring-path/7")[2]["upstream"] for _ in range(5)}) == 1
    assert len({echo(p.port, "/ring-ip/x")[2]["upstream"] for _ in range(10)}) == 1  # one client IP
