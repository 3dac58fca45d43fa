"""Keep-alive on both sides, pipelining, stale pooled connections."""
import http.client
import json
import socket
import threading
import time

import pytest

from conftest import (SLOW, pipelined_answers, raw, read_until_closed, request,
                      sent_while_stopped, statuses, wait_for)


def simple(p_factory, u):
    return p_factory(upstreams={"svc": [u.address]},
                     routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                     server={"workers": 1})


def read_answer(s):
    """One JSON answer of the test upstream from a keep-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = s.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    return data


def test_keepalive_reuses_upstream_connections(portico, upstreams):
    u = upstreams()
    p = simple(portico, u)
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
    for i in range(50):
        conn.request("GET", f"/k/{i}")
        r = conn.getresponse()
        assert r.status == 200
        r.read()
    conn.close()
    assert len(u.requests) == 50
    assert u.connections == 1  # one pooled upstream connection served all 50


def test_client_keepalive_many_requests_one_connection(portico, upstreams):
    u = upstreams()
    p = simple(portico, u)
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        for i in range(20):
            s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_answer(s).startswith(b"HTTP/1.1 200")


def test_pipelined_requests_answered_in_order(portico, upstreams):
    u = upstreams()
    p = simple(portico, u)
    reqs = b"".join(b"GET /p/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(10))
    reqs += b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    out = raw(p.port, reqs)
    assert statuses(out) == [200] * 11
    positions = [out.index(b'"/p/%d"' % i) for i in range(10)] + [out.index(b'"/last"')]
    assert positions == sorted(positions)
    assert [r.target for r in u.requests] == [f"/p/{i}" for i in range(10)] + ["/last"]


def test_pipelined_post_bodies_stay_separate(portico, upstreams):
    u = upstreams()
    p = simple(portico, u)
    reqs = (b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    out = raw(p.port, reqs)
    assert statuses(out) == [200, 200, 200]
    assert [(r.target, r.body_len) for r in u.requests] == [("/a", 5), ("/b", 3), ("/c", 0)]
    assert u.requests[0].body_prefix == b"hello" and u.requests[1].body_prefix == b"abc"


def test_stale_pooled_connection_is_retried_transparently(portico, upstreams):
    u = upstreams()
    p = simple(portico, u)
    assert request(p.port, "GET", "/one")[0] == 200
    u.close_idle_connections()  # the upstream drops the idle keep-alive connection
    time.sleep(0.05)
    for method in ("GET", "POST"):  # POST too: nothing reached the upstream on the dead one
        s, _, _ = request(p.port, method, "/two", body=b"x" if method == "POST" else None)
        assert s == 200
        u.close_idle_connections()
        time.sleep(0.05)
    assert u.connections >= 3


def test_http10_client_gets_connection_close(portico, upstreams):
    u = upstreams()
    p = simple(portico, u)
    out = raw(p.port, b"GET /chunked HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"hello world"  # de-chunked for HTTP/1.0, delimited by close


def test_idle_client_connection_is_closed_after_idle_timeout(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                server={"limits": {"idle_timeout": "300ms"}})
    with socket.create_connection(("127.0.0.1", p.port), timeout=3) as s:
        start = time.monotonic()
        assert s.recv(10) == b""
        assert time.monotonic() - start < 2


@pytest.mark.parametrize("requests", [1, 3])
def test_client_that_half_closes_after_its_requests_gets_answers_then_the_close(
        portico, upstreams, requests):
    """A client that shuts its sending side after its requests (`nc -N`) and reads until the
    connection ends. Portico is stopped meanwhile, so the requests and the FIN reach its worker
    as one epoll event: the short read that takes the requests leaves the FIN unseen, with no
    edge to come for it. Portico answers, then looks for that FIN once the connection has been
    idle 100 ms and closes — not at the 60 s idle timeout."""
    u = upstreams()
    p = simple(portico, u)
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        time.sleep(0.05)  # accepted, and its read waiting

        def requests_then_fin():
            s.sendall(b"".join(b"GET /hc/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i
                               for i in range(requests)))
            s.shutdown(socket.SHUT_WR)
        sent_while_stopped(p, requests_then_fin)
        out, elapsed = read_until_closed(s)
    assert statuses(out) == [200] * requests
    assert elapsed < 3, f"closed after {elapsed:.1f} s"


def test_max_connections_bounds_concurrent_clients(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                server={"workers": 1, "limits": {"max_connections": 2}})
    held = [socket.create_connection(("127.0.0.1", p.port), timeout=3) for _ in range(2)]
    wait_for(lambda: p.metric("portico_connections_active") == 2, what="2 active")
    with socket.create_connection(("127.0.0.1", p.port), timeout=3) as extra:
        extra.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            assert extra.recv(100) == b""  # refused: closed at once
        except ConnectionResetError:
            pass
    for s in held:
        s.close()


@pytest.mark.skipif(SLOW, reason="sanitizer builds add shadow memory and redzones to every block")
def test_idle_keepalive_connections_hold_no_read_buffer(portico, upstreams):
    # Between requests a connection parks its 16 KiB read buffer in the worker's pool: 400 idle
    # keep-alive connections cost their sessions, not 400 buffers (about 12.5 KiB each here
    # before, 7.5 with the buffers parked and the session's frame in a 3 KiB block).
    u = upstreams()
    p = simple(portico, u)
    time.sleep(0.3)
    before = p.rss_kib()
    conns = []
    try:
        for _ in range(400):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            s.sendall(b"GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_answer(s).startswith(b"HTTP/1.1 200")
            conns.append(s)
        time.sleep(0.3)
        per_connection = (p.rss_kib() - before) / len(conns)
        assert per_connection < 10, f"{per_connection:.1f} KiB per idle connection"
        # They still serve their next request.
        for s in conns[:20]:
            s.sendall(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_answer(s).startswith(b"HTTP/1.1 200")
    finally:
        for s in conns:
            s.close()


def test_pipelined_answers_to_a_client_that_does_not_read_arrive_whole(portico, upstreams):
    """Answers written at once until the client's socket pushes back: the rest of the one that
    did not fit follows when the client reads again, and every answer arrives whole, in order."""
    u = upstreams()
    p = simple(portico, u)
    count, pad = 2500, "x" * 4000  # ~4 KiB answers (the upstream echoes the target): ~10 MB
    reqs = b"".join(b"GET /p/%d?%s HTTP/1.1\r\nHost: t\r\n\r\n" % (i, pad.encode())
                    for i in range(count))
    reqs += b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", p.port), timeout=20) as s:
        sender = threading.Thread(target=s.sendall, args=(reqs,))
        sender.start()
        time.sleep(1.0)  # nothing read meanwhile: Portico's writes to this client block
        out = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            out += chunk
        sender.join(timeout=20)
    answers = pipelined_answers(out)
    assert all(head.startswith(b"HTTP/1.1 200 ") for head, _ in answers)
    targets = [json.loads(body)["target"] for _, body in answers]
    assert targets == [f"/p/{i}?{pad}" for i in range(count)] + ["/last"]
