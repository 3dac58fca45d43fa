"""Bodies stream both ways with bounded memory; HEAD, 204/304, 100-continue."""
import socket
import threading
import time

import pytest

from conftest import raw, recv_until, request, statuses

GIB = 1 << 30
RSS_LIMIT_KIB = 64 * 1024


def gateway(portico, u, **server):
    return portico(upstreams={"svc": {"targets": [u.address], "timeouts": {"read": "30s"}}},
                   routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                   server={"workers": 1, "limits": {"max_body_bytes": "2GiB"}, **server})


class RssSampler:
    def __init__(self, portico):
        self.p, self.peak, self.stop_flag = portico, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_flag:
            self.peak = max(self.peak, self.p.rss_kib())
            time.sleep(0.02)

    def stop(self):
        self.stop_flag = True
        self.t.join()
        return self.peak


def read_response_body(s, size):
    """Reads a response head and `size` body bytes; returns (head, body_len)."""
    buf = recv_until(s, b"\r\n\r\n")
    head, _, rest = buf.partition(b"\r\n\r\n")
    got = len(rest)
    while got < size:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return head, got


@pytest.mark.heavy
def test_1gib_download_content_length_bounded_memory(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    sampler = RssSampler(p)
    with socket.create_connection(("127.0.0.1", p.port), timeout=60) as s:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % GIB)
        head, got = read_response_body(s, GIB)
    peak = sampler.stop()
    assert head.startswith(b"HTTP/1.1 200") and got == GIB
    assert peak < RSS_LIMIT_KIB, f"peak RSS {peak} KiB"


@pytest.mark.heavy
def test_1gib_download_chunked_bounded_memory(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    sampler = RssSampler(p)
    with socket.create_connection(("127.0.0.1", p.port), timeout=60) as s:
        s.sendall(b"GET /chunked-bytes/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % GIB)
        total = 0
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    peak = sampler.stop()
    assert total > GIB  # payload plus chunk framing, relayed as is
    assert peak < RSS_LIMIT_KIB, f"peak RSS {peak} KiB"


@pytest.mark.heavy
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_1gib_upload_bounded_memory(portico, upstreams, framing):
    u = upstreams()
    p = gateway(portico, u)
    sampler = RssSampler(p)
    piece = b"u" * (1 << 20)
    with socket.create_connection(("127.0.0.1", p.port), timeout=60) as s:
        if framing == "content-length":
            s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % GIB)
            for _ in range(GIB // len(piece)):
                s.sendall(piece)
        else:
            s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
            for _ in range(GIB // len(piece)):
                s.sendall(frame)
            s.sendall(b"0\r\n\r\n")
        head, _ = read_response_body(s, 0)
    peak = sampler.stop()
    assert head.startswith(b"HTTP/1.1 200")
    assert u.requests[-1].body_len == GIB
    assert peak < RSS_LIMIT_KIB, f"peak RSS {peak} KiB"


def test_chunked_response_relayed(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    out = raw(p.port, b"GET /chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"


def test_response_until_close(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    out = raw(p.port, b"GET /nolength HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower() and body == b"until-close body"


def test_head_204_304_have_no_body(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"HEAD /bytes/5000 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /status/304 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    assert statuses(out) == [200, 204, 304, 200]
    assert b"Content-Length: 5000\r\n" in out  # HEAD keeps the announced length
    assert out.endswith(b"\r\n\r\nxxx")           # only the last response has a body


def test_expect_100_continue(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = s.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        head, _ = read_response_body(s, 0)
        assert head.startswith(b"HTTP/1.1 200")
    assert u.requests[-1].body_prefix == b"hello"
    assert u.requests[-1].header("expect") is None


def test_server_sent_events_arrive_without_buffering(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"GET /stream/5/200 HTTP/1.1\r\nHost: t\r\n\r\n")
        seen = 0
        buf = b""
        while seen < 5:
            chunk = s.recv(65536)
            now = time.time()
            assert chunk
            buf += chunk
            for line in chunk.split(b"\n"):
                if line.startswith(b"data: "):
                    sent_at = float(line.split()[2])
                    assert now - sent_at < 0.05, f"event delayed {now - sent_at:.3f}s"
                    seen += 1


def test_large_request_headers_within_limit(portico, upstreams):
    u = upstreams()
    p = gateway(portico, u)
    s, _, _ = request(p.port, "GET", "/", headers={"X-Big": "v" * 30000})
    assert s == 200
    assert len(u.requests[-1].header("x-big")) == 30000
