"""Unreachable, slow and failing upstreams: fast JSON 502/503/504, bounded retries."""
import json
import socket
import time

from conftest import refused_port, request


def all_route(upstream="svc"):
    return [{"name": "all", "match": {"path_prefix": "/"}, "upstream": upstream}]


def assert_json_error(status, hdrs, body, expected):
    assert status == expected
    err = json.loads(body)
    assert err["status"] == expected and err["request_id"] == hdrs["x-request-id"]


def test_unreachable_upstream_is_a_fast_502(portico):
    dead = f"127.0.0.1:{refused_port()}"
    p = portico(upstreams={"svc": {"targets": [dead], "retries": {"attempts": 3}}},
                routes=all_route())
    start = time.monotonic()
    s, hdrs, body = request(p.port, "GET", "/")
    assert_json_error(s, hdrs, body, 502)
    assert time.monotonic() - start < 1.0


def test_upstream_without_targets_is_503(portico):
    p = portico(upstreams={"svc": {"targets": []}}, routes=all_route())
    s, hdrs, body = request(p.port, "GET", "/")
    assert_json_error(s, hdrs, body, 503)


def test_read_timeout_is_504(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": {"targets": [u.address], "timeouts": {"read": "200ms"}}},
                routes=all_route())
    start = time.monotonic()
    s, hdrs, body = request(p.port, "GET", "/sleep/2000")
    assert_json_error(s, hdrs, body, 504)
    assert time.monotonic() - start < 1.0


def test_total_timeout_is_504(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": {"targets": [u.address],
                                   "timeouts": {"read": "5s", "total": "300ms"}}},
                routes=all_route())
    start = time.monotonic()
    s, hdrs, body = request(p.port, "GET", "/sleep/2000")
    assert_json_error(s, hdrs, body, 504)
    assert time.monotonic() - start < 1.2


def test_connect_timeout_is_504(portico):
    # A listener whose accept queue is full drops further SYNs: connects hang.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    addr = blackhole.getsockname()
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(addr)
        fillers.append(f)
    time.sleep(0.1)
    try:
        p = portico(upstreams={"svc": {"targets": [f"127.0.0.1:{addr[1]}"],
                                       "timeouts": {"connect": "200ms"},
                                       "retries": {"attempts": 1}}},
                    routes=all_route())
        start = time.monotonic()
        s, hdrs, body = request(p.port, "GET", "/")
        assert_json_error(s, hdrs, body, 504)
        assert time.monotonic() - start < 1.0
    finally:
        for f in fillers:
            f.close()
        blackhole.close()


def test_connect_failure_retries_on_another_target(portico, upstreams):
    live = upstreams("live")
    dead = f"127.0.0.1:{refused_port()}"
    p = portico(upstreams={"svc": {"targets": [dead, live.address],
                                   "retries": {"attempts": 2, "backoff_base": "1ms"}}},
                routes=all_route(), server={"workers": 1})
    for _ in range(6):
        s, _, body = request(p.port, "GET", "/r")
        assert s == 200 and json.loads(body)["upstream"] == "live"
    assert p.metric("portico_upstream_retries_total", 'upstream="svc"') >= 3


def test_retry_on_listed_status_uses_a_different_target(portico, upstreams):
    a, b = upstreams("a"), upstreams("b")
    p = portico(upstreams={"svc": {"targets": [a.address, b.address],
                                   "retries": {"attempts": 2, "on_statuses": [503],
                                               "backoff_base": "1ms"}}},
                routes=[{"name": "flaky", "match": {"path_prefix": "/status"}, "upstream": "svc"}],
                server={"workers": 1})
    # Both answer 503: two attempts, one per target, then the last 503 is relayed as is.
    s, hdrs, body = request(p.port, "GET", "/status/503")
    assert s == 503 and json.loads(body) == {"status": 503}
    assert len(a.requests) == 1 and len(b.requests) == 1


def test_non_idempotent_request_is_not_retried_after_sending(portico, upstreams):
    a, b = upstreams("a"), upstreams("b")
    p = portico(upstreams={"svc": {"targets": [a.address, b.address],
                                   "retries": {"attempts": 3, "on_statuses": [503]}}},
                routes=all_route(), server={"workers": 1})
    s, _, _ = request(p.port, "POST", "/status/503", body=b"data")
    assert s == 503
    assert len(a.requests) + len(b.requests) == 1


def test_upstream_closing_without_answer_is_502(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": {"targets": [u.address], "retries": {"attempts": 1}}},
                routes=all_route())
    s, hdrs, body = request(p.port, "GET", "/close")
    assert_json_error(s, hdrs, body, 502)


def test_idempotent_request_retried_after_upstream_reset(portico, upstreams):
    a, b = upstreams("a"), upstreams("b")
    p = portico(upstreams={"svc": {"targets": [a.address, b.address],
                                   "retries": {"attempts": 2, "backoff_base": "1ms"}}},
                routes=all_route(), server={"workers": 1})
    s, _, _ = request(p.port, "GET", "/close")
    assert s == 502  # both targets close: the retry happened and failed too
    assert len(a.requests) == 1 and len(b.requests) == 1


def test_error_after_request_body_keeps_pipelined_requests_intact(portico):
    from conftest import raw, statuses
    p = portico(upstreams={"svc": {"targets": []}}, routes=all_route())
    out = raw(p.port, b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 19\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
                      b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert statuses(out) == [503, 503]  # the body was skipped, not parsed as a request
