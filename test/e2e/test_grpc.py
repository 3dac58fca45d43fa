"""gRPC through Portico, end to end with python3-grpcio on both sides: the four call kinds,
metadata and trailers, status and message, grpc-timeout as the upstream deadline, and
gateway-side failures answered as gRPC statuses. Also HTTP/2 upstreams for plain HTTP clients
(nghttpd as an h2c server)."""
import json
import os
import queue
import shutil
import socket
import subprocess
import time

import grpc
import pytest

from certs import Pki
from conftest import base_config, free_port, refused_port, validate, wait_for
from grpc_service import Client, serve
from h2client import H2Client


@pytest.fixture
def grpc_server():
    servers = []

    def make(**kw):
        server, port = serve(**kw)
        servers.append(server)
        return port

    yield make
    for s in servers:
        s.stop(0)


def grpc_gateway(portico, port, protocol="h2c", extra_upstreams=None, routes=None, tls=None):
    ups = {"grpc": {"targets": [{"address": f"127.0.0.1:{port}"}], "protocol": protocol}}
    if tls:
        ups["grpc"]["tls"] = tls
    ups.update(extra_upstreams or {})
    return portico(upstreams=ups, routes=routes or [
        {"name": "echo", "match": {"path_prefix": "/test.Echo/"}, "upstream": "grpc"}])


def test_all_four_call_kinds_with_metadata_trailers_and_status(portico, grpc_server):
    p = grpc_gateway(portico, grpc_server())
    c = Client(f"127.0.0.1:{p.port}")
    reply, call = c.unary.with_call(b"hi", metadata=(("x-meta", "m1"),), timeout=5)
    assert reply == b"echo:hi|m1"
    assert ("x-trailer", "t-hi") in [(m.key, m.value) for m in call.trailing_metadata()]
    assert list(c.server_stream(b"4", timeout=5)) == [b"item-0", b"item-1", b"item-2", b"item-3"]
    assert c.client_stream(iter([b"a", b"b", b"c"]), timeout=5) == b"joined:a,b,c"
    assert list(c.bidi(iter([b"x", b"y"]), timeout=5)) == [b"pong:x", b"pong:y"]
    with pytest.raises(grpc.RpcError) as err:
        c.unary(b"fail:not ready", timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "not ready"
    c.close()
    assert p.metric("portico_http2_streams_total") >= 5


def test_bidi_stream_is_interleaved_not_buffered(portico, grpc_server):
    p = grpc_gateway(portico, grpc_server())
    c = Client(f"127.0.0.1:{p.port}")
    outbox = queue.Queue()

    def requests():
        while True:
            item = outbox.get()
            if item is None:
                return
            yield item

    responses = c.bidi(requests(), timeout=10)
    # Each reply must come back before the next message is sent: a proxy that waited for the
    # end of the request stream would deadlock here.
    for i in range(5):
        outbox.put(f"m{i}".encode())
        assert next(responses) == f"pong:m{i}".encode()
    outbox.put(None)
    assert list(responses) == []
    c.close()


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def test_grpc_timeout_is_the_upstream_deadline(portico, grpc_server):
    p = grpc_gateway(portico, grpc_server())
    # A raw HTTP/2 client, so that only Portico can enforce the deadline.
    c = H2Client(p.port)
    start = time.monotonic()
    sid = c.request("/test.Echo/Unary", method="POST",
                    headers=[("content-type", "application/grpc"), ("te", "trailers"),
                             ("grpc-timeout", "300m")],
                    body=grpc_frame(b"sleep:3"))
    r = c.wait(sid, timeout=5)
    elapsed = time.monotonic() - start
    assert r.status == 200
    status = r.headers.get("grpc-status") or r.trailers.get("grpc-status")
    assert status == "4", (r.headers, r.trailers)  # DEADLINE_EXCEEDED
    assert 0.25 < elapsed < 1.5, elapsed
    c.close()


def test_gateway_failures_are_grpc_statuses(portico, grpc_server):
    dead = refused_port()
    p = portico(upstreams={"grpc": {"targets": [{"address": f"127.0.0.1:{grpc_server()}"}],
                                    "protocol": "h2c"},
                           "down": {"targets": [{"address": f"127.0.0.1:{dead}"}],
                                    "protocol": "h2c"}},
                routes=[{"name": "echo", "match": {"path_prefix": "/test.Echo/"},
                         "upstream": "grpc"},
                        {"name": "down", "match": {"path_prefix": "/test.Down/"},
                         "upstream": "down"}])
    c = Client(f"127.0.0.1:{p.port}")
    with pytest.raises(grpc.RpcError) as err:
        c.missing(b"x", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "no route" in err.value.details()
    down = c.channel.unary_unary("/test.Down/Call")
    with pytest.raises(grpc.RpcError) as err:
        down(b"x", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "upstream" in err.value.details()
    # The JSON error body is for non-gRPC clients only.
    c2 = H2Client(p.port)
    sid = c2.request("/test.Down/Call", method="POST",
                     headers=[("content-type", "application/grpc")], body=grpc_frame(b"x"))
    r = c2.wait(sid)
    assert r.status == 200 and r.headers["grpc-status"] == "14" and r.body == b""
    assert len(r.headers["x-request-id"]) == 32
    c2.close()
    c.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki-grpc"))


def test_grpc_over_tls_both_sides(portico, grpc_server, pki):
    up_cert, up_key = pki.issue("grpc-up", "backend.test", dns=["backend.test"])
    gw_cert, gw_key = pki.issue("grpc-gw", "gw.test", dns=["gw.test"])
    import grpc_service
    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(4))
    handlers = grpc.method_handlers_generic_handler(grpc_service.SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(grpc_service._unary)})
    server.add_generic_rpc_handlers((handlers,))
    creds = grpc.ssl_server_credentials([(open(up_key, "rb").read(), open(up_cert, "rb").read())])
    up_port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        port = free_port()
        cfg = base_config(port, free_port(), {"grpc": {
            "targets": [{"address": f"127.0.0.1:{up_port}"}], "protocol": "h2",
            "tls": {"ca": pki.ca_file, "server_name": "backend.test"}}},
            [{"name": "echo", "match": {"path_prefix": "/"}, "upstream": "grpc"}])
        cfg["listeners"] = [{"name": "tls", "listen": f"127.0.0.1:{port}",
                             "tls": {"certificates": [{"cert": gw_cert, "key": gw_key}]}}]
        p = portico(config=cfg)
        creds = grpc.ssl_channel_credentials(open(pki.ca_file, "rb").read())
        channel = grpc.secure_channel(f"127.0.0.1:{port}", creds,
                                      options=(("grpc.ssl_target_name_override", "gw.test"),))
        unary = channel.unary_unary("/test.Echo/Unary")
        assert unary(b"secure", timeout=5) == b"echo:secure|"
        channel.close()
    finally:
        server.stop(0)


@pytest.fixture
def nghttpd(tmp_path):
    binary = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    (docroot / "hello.txt").write_bytes(b"hello over h2c\n")
    (docroot / "big.bin").write_bytes(os.urandom(3_000_000))
    port = free_port()
    proc = subprocess.Popen([binary, "--no-tls", "-a", "127.0.0.1", "-d", str(docroot), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(up, what="nghttpd")
    yield port, docroot
    proc.terminate()
    proc.wait(timeout=5)


def test_h2c_upstream_for_http1_and_http2_clients(portico, nghttpd):
    port, docroot = nghttpd
    p = portico(upstreams={"h2": {"targets": [{"address": f"127.0.0.1:{port}"}],
                                  "protocol": "h2c"}},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "h2"}])
    r = subprocess.run(["curl", "-sS", "--http1.1", "-D", "-", "--max-time", "10",
                        f"http://127.0.0.1:{p.port}/hello.txt"], capture_output=True, timeout=20)
    assert r.returncode == 0 and r.stdout.endswith(b"\r\n\r\nhello over h2c\n"), r.stdout
    assert b"HTTP/1.1 200" in r.stdout
    out = subprocess.run(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{p.port}/big.bin"],
                         capture_output=True, timeout=30).stdout
    assert out == (docroot / "big.bin").read_bytes()
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
                        "%{http_code}", f"http://127.0.0.1:{p.port}/missing"],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout == "404"
    # Many client streams share few upstream connections.
    r = subprocess.run(["h2load", "-n", "1000", "-c", "4", "-m", "10",
                        f"http://127.0.0.1:{p.port}/hello.txt"],
                       capture_output=True, text=True, timeout=60)
    assert "1000 succeeded" in r.stdout, r.stdout + r.stderr
    # HTTP/1.1 keep-alive client, several requests on one connection.
    r = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "10",
                        f"http://127.0.0.1:{p.port}/hello.txt",
                        f"http://127.0.0.1:{p.port}/hello.txt"], capture_output=True, timeout=20)
    assert r.stdout == b"hello over h2c\n" * 2


def test_invalid_upstream_protocol_config_is_refused(tmp_path):
    cfg = base_config(free_port(), free_port(), {
        "a": {"targets": ["127.0.0.1:1"], "protocol": "h2"},
        "b": {"targets": ["127.0.0.1:1"], "protocol": "spdy"}}, [])
    code, out = validate(cfg, tmp_path)
    assert code != 0
    assert "upstreams[0].protocol: h2 needs a tls block" in out
    assert 'upstreams[1].protocol: unknown protocol "spdy"' in out


def established_to(port):
    """Established TCP connections whose remote end is 127.0.0.1:port (from /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].split(":")[1], 16) == port:
                count += 1
    return count


def test_idle_http2_upstream_connections_close(portico, grpc_server):
    port = grpc_server()
    ups = {"grpc": {"targets": [{"address": f"127.0.0.1:{port}"}], "protocol": "h2c",
                    "pool": {"idle_timeout": "300ms"}}}
    p = portico(upstreams=ups, routes=[
        {"name": "echo", "match": {"path_prefix": "/test.Echo/"}, "upstream": "grpc"}])
    c = Client(f"127.0.0.1:{p.port}")
    assert c.unary(b"one", timeout=5) == b"echo:one|"
    assert established_to(port) >= 1
    wait_for(lambda: established_to(port) == 0, timeout=5, what="the idle connection closed")
    assert c.unary(b"two", timeout=5) == b"echo:two|"  # a new one is made
    c.close()
