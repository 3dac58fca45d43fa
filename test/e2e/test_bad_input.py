"""Hostile and malformed requests: the right 4xx, the connection closed, nothing forwarded."""
import json
import socket
import time

import pytest

from conftest import raw, statuses


@pytest.fixture
def gateway(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                server={"limits": {"max_header_bytes": "8KiB", "max_headers": 20,
                                   "max_body_bytes": "1KiB", "max_uri_bytes": 1024,
                                   "header_timeout": "500ms"}})
    return p, u


BAD = {
    "malformed request line": (b"GET /\r\nHost: t\r\n\r\n", 400),
    "two spaces": (b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "bad version": (b"GET / HTTP/9.9\r\nHost: t\r\n\r\n", 505),
    "garbage version": (b"GET / HTTX/1.1\r\nHost: t\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  continued\r\n\r\n", 400),
    "bare LF": (b"GET / HTTP/1.1\nHost: t\n\n", 400),
    "NUL in header": (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    "missing host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "CL and TE": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "conflicting CL": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                       b"Content-Length: 4\r\n\r\nabcd", 400),
    "CL list conflict": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd", 400),
    "negative CL": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    "plus CL": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc", 400),
    "unknown coding": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "chunked not last": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    "TE obfuscated": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    "TE in HTTP/1.0": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bad chunk size": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "chunk size overflow": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"fffffffffffffffff1\r\n", 400),
    "chunk missing CRLF": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"3\r\nabcX\r\n0\r\n\r\n", 400),
    "too many headers": (b"GET / HTTP/1.1\r\nHost: t\r\n" +
                         b"".join(b"X-%d: v\r\n" % i for i in range(30)) + b"\r\n", 431),
    "header too large": (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n", 431),
    "URI too long": (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    "body too large": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413),
    "path climbs above root": (b"GET /../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "escaped dots climb above root": (b"GET /%2E%2E/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "dot segment behind escaped slash": (b"GET /a/..%2Fb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "dot segment with parameters": (b"GET /a/..;/b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "malformed escape": (b"GET /a%2%45 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "lower-case method": (b"delete /x HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "unsupported expectation": (b"GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417),
    "CONNECT": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_request_is_refused_and_not_forwarded(gateway, case):
    p, u = gateway
    data, expected = BAD[case]
    out = raw(p.port, data)
    assert statuses(out) == [expected], out[:200]
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower() or expected == 413
    err = json.loads(body)
    assert err["status"] == expected and len(err["request_id"]) == 32
    # Chunked-body errors are found while streaming; nothing else may reach the upstream.
    if "chunk" not in case:
        assert u.requests == []
    else:
        assert all(r.body_len == 0 for r in u.requests)


def test_chunked_body_over_limit_gets_413(gateway):
    p, u = gateway
    body = b"".join(b"100\r\n" + b"z" * 256 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"
    out = raw(p.port, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert statuses(out) == [413]


def test_header_timeout_gets_408(gateway):
    p, _ = gateway
    start = time.monotonic()
    out = raw(p.port, b"GET / HTTP/1.1\r\nHost: t\r\n", timeout=3)
    assert statuses(out) == [408]
    assert time.monotonic() - start < 2.5


def test_request_line_without_version_is_refused_at_once(gateway):
    """HTTP/0.9 style: `GET /path` and one CRLF, then nothing. Refused before the header
    timeout (500 ms here), the connection closed, nothing forwarded."""
    p, u = gateway
    start = time.monotonic()
    out = raw(p.port, b"GET /path\r\n", timeout=3)  # reads until Portico closes
    elapsed = time.monotonic() - start
    assert statuses(out) == [400], out[:200]
    assert elapsed < 0.3, elapsed
    assert u.requests == []


def test_slowloris_dribble_is_cut_at_header_timeout(gateway):
    p, _ = gateway
    with socket.create_connection(("127.0.0.1", p.port), timeout=3) as s:
        start = time.monotonic()
        out = b""
        try:
            for _ in range(40):
                s.sendall(b"X")
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(2)
        try:
            out = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            pass
        assert time.monotonic() - start < 3
        assert out == b"" or statuses(out) in ([408], [400])


SMUGGLING = [
    # CL.TE and TE.CL: refused outright, so the hidden second request never exists.
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
    b"5c\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n0\r\n\r\n",
    # TE with whitespace/case tricks
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
    b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    # Chunk extension with a bare LF
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2;\nxx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
]


@pytest.mark.parametrize("index", range(len(SMUGGLING)))
def test_smuggling_reaches_upstream_as_at_most_one_request(gateway, index):
    p, u = gateway
    raw(p.port, SMUGGLING[index])
    time.sleep(0.1)
    assert len(u.requests) <= 1
    assert all("smuggled" not in r.target for r in u.requests)
