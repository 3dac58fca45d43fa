"""The compression filter with the real binary: bodies encoded by Accept-Encoding and decoded
by the real tools (gzip -d, brotli -d, zstd -d), over HTTP/1.1 and HTTP/2; what is left alone;
request bodies decoded with a bound (a decompression bomb is a 413)."""
import gzip
import json
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

import conftest
import http_service

BODY = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(300)]).encode()


class Origin(http_service.Service):
    """/body?type=T&size=N&h=Name:Value&status=S: N bytes of BODY (repeated) as type T;
    /echo: the request body's length and first bytes, as JSON."""

    def __init__(self):
        self.requests = []
        origin = self

        class Handler(http_service.Handler):
            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                origin.requests.append(dict(self.headers))
                size = int(q.get("size", len(BODY)))
                body = (BODY * (size // len(BODY) + 1))[:size]
                extra = [h.partition(":")[::2] for h in parse_qs(url.query).get("h", [])]
                self.reply(int(q.get("status", 200)), q.get("type", "application/json"), body,
                           extra)

            do_HEAD = do_GET

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                origin.requests.append(dict(self.headers))
                self.reply(200, "application/json", json.dumps(
                    {"length": len(data), "start": data[:20].decode("latin-1"),
                     "encoding": self.headers.get("Content-Encoding")}).encode())

        super().__init__(Handler)


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


def curl(port, path, headers=(), http2=False, data=None, method=None):
    return conftest.curl(port, path, http2, method, headers, data)

def decode_with_tool(coding, data):
    tool = {"gzip": ["gzip", "-d", "-c"], "br": ["brotli", "-d", "-c"],
            "zstd": ["zstd", "-d", "-c", "-q"]}[coding]
    r = subprocess.run(tool, input=data, capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def route(origin, config=None):
    return {"name": "c", "match": {"path_prefix": "/"}, "upstream": "o",
            "plugins": [{"name": "compression", "config": config or {}}]}


@pytest.mark.parametrize("http2", [False, True])
@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_each_coding_decodes_with_the_real_tool(portico, origin, coding, http2):
    p = portico(upstreams={"o": [origin.address]}, routes=[route(origin)])
    status, h, body = curl(p.port, "/body?size=50000&h=ETag:\"v1\"",
                           headers=[f"Accept-Encoding: {coding}"], http2=http2)
    assert status == 200
    assert h["content-encoding"] == coding
    assert "accept-encoding" in h["vary"].lower()
    assert h["etag"] == 'W/"v1"'  # no longer byte-identical
    assert len(body) < 50000 / 4
    assert decode_with_tool(coding, body) == (BODY * 4)[:50000]


def test_preference_and_q_values(portico, origin):
    p = portico(upstreams={"o": [origin.address]}, routes=[
        route(origin, {"algorithms": ["br", "gzip"], "level": {"gzip": 9, "br": 5}})])
    _, h, _ = curl(p.port, "/body", headers=["Accept-Encoding: gzip, br, zstd"])
    assert h["content-encoding"] == "br"  # the server's order breaks the tie; zstd not offered
    _, h, body = curl(p.port, "/body", headers=["Accept-Encoding: gzip;q=1, br;q=0.5"])
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == BODY
    _, h, body = curl(p.port, "/body", headers=["Accept-Encoding: zstd"])
    assert "content-encoding" not in h and body == BODY


def test_left_alone(portico, origin):
    """No Accept-Encoding, small bodies, types not listed, already encoded, no-transform,
    ranges, HEAD: the body as the service sent it."""
    p = portico(upstreams={"o": [origin.address]},
                routes=[route(origin, {"min_length": "2KiB", "types": ["application/json", "text/*"]})])
    ae = ["Accept-Encoding: gzip, br, zstd"]
    _, h, body = curl(p.port, "/body")  # the client asked for nothing: never encoded
    assert "content-encoding" not in h and body == BODY and "accept-encoding" in h["vary"].lower()
    _, h, body = curl(p.port, "/body?size=1000", headers=ae)
    assert "content-encoding" not in h and len(body) == 1000
    _, h, body = curl(p.port, "/body?type=image/png", headers=ae)
    assert "content-encoding" not in h and body == BODY
    _, h, body = curl(p.port, "/body?type=text/html;%20charset=utf-8", headers=ae)
    assert h["content-encoding"] == "zstd"
    _, h, body = curl(p.port, "/body?h=Content-Encoding:identity-not", headers=ae)
    assert h["content-encoding"] == "identity-not" and body == BODY
    _, h, body = curl(p.port, "/body?h=Cache-Control:public,%20no-transform", headers=ae)
    assert "content-encoding" not in h and body == BODY
    _, h, body = curl(p.port, "/body?status=206&h=Content-Range:bytes%200-9/100", headers=ae)
    assert "content-encoding" not in h
    status, h, body = curl(p.port, "/body", headers=ae, method="HEAD")
    assert status == 200 and "content-encoding" not in h and body == b""


def test_request_bodies_decoded_with_a_bound(portico, origin):
    p = portico(upstreams={"o": [origin.address]}, routes=[
        route(origin, {"decompress_requests": True, "max_decompressed": "1MiB"})])
    payload = b'{"hello": "world"}' * 1000
    status, _, body = curl(p.port, "/echo", data=gzip.compress(payload),
                           headers=["Content-Encoding: gzip", "Content-Type: application/json"])
    assert status == 200
    got = json.loads(body)
    assert got["length"] == len(payload) and got["start"] == payload[:20].decode()
    assert got["encoding"] is None  # the service gets the decoded body, said as such
    bomb = gzip.compress(b"\0" * (50 << 20))
    assert len(bomb) < 100000
    status, h, body = curl(p.port, "/echo", data=bomb, headers=["Content-Encoding: gzip"])
    assert status == 413 and json.loads(body)["request_id"]
    status, _, body = curl(p.port, "/echo", data=b"not gzip at all",
                           headers=["Content-Encoding: gzip"])
    assert status == 400
    # A coding it does not decode is forwarded as sent.
    status, _, body = curl(p.port, "/echo", data=b"abc", headers=["Content-Encoding: compress"])
    assert status == 200 and json.loads(body)["encoding"] == "compress"


def test_bad_config_is_refused(tmp_path):
    from conftest import base_config, free_port, validate
    cfg = base_config(free_port(), free_port(), {"o": ["127.0.0.1:1"]}, [
        {"name": "c", "match": {"path_prefix": "/"}, "upstream": "o", "plugins": [
            {"name": "compression", "config": {"algorithms": ["gzip", "lzma"],
                                               "level": {"zstd": 40}}}]}])
    code, out = validate(cfg, tmp_path)
    assert code != 0 and 'unknown algorithm "lzma"' in out and "level.zstd" in out
