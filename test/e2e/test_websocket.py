"""WebSocket through Portico: python3-websockets client and server on both sides."""
import asyncio
import json
import threading
import time

import pytest
import websockets

from conftest import base_config, free_port, raw, statuses, wait_for


class EchoServer:
    """A websockets echo server on its own event loop thread."""

    def __init__(self):
        self.port = free_port()
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def echo(ws, path=None):
            self.connections += 1
            async for message in ws:
                await ws.send(f"echo:{message}")

        async def main():
            self.server = await websockets.serve(echo, "127.0.0.1", self.port)
            ready.set()
            await self.server.wait_closed()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)
        self.thread.start()
        assert ready.wait(5)

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(5)


@pytest.fixture
def echo_server():
    s = EchoServer()
    yield s
    s.stop()


def ws_config(p_port, admin, ws_port, **route_extra):
    return base_config(p_port, admin, {"ws": [f"127.0.0.1:{ws_port}"]},
                       [{"name": "ws", "match": {"path_prefix": "/ws"}, "upstream": "ws",
                         **route_extra}])


def test_websocket_messages_and_reload_keep_the_connection(portico, echo_server):
    port, admin = free_port(), free_port()
    cfg = ws_config(port, admin, echo_server.port)
    p = portico(config=cfg)

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat",
                                      extra_headers={"X-Request-Id": "ws-1"}) as ws:
            replies = []
            for i in range(3):
                await ws.send(f"m{i}")
                replies.append(await asyncio.wait_for(ws.recv(), 5))
            # A reload that adds a route and an upstream: the open connection carries on.
            cfg["upstreams"].append({"name": "other", "targets": ["127.0.0.1:1"]})
            cfg["routes"].append({"name": "new", "match": {"path": "/new"}, "upstream": "other"})
            await asyncio.get_running_loop().run_in_executor(None, p.reload, cfg)
            assert p.version() == 2
            assert p.metric("portico_tunnels_active") == 1
            await ws.send("after reload")
            replies.append(await asyncio.wait_for(ws.recv(), 5))
            big = "x" * 200_000
            await ws.send(big)
            replies.append(await asyncio.wait_for(ws.recv(), 5))
            return replies

    replies = asyncio.run(scenario())
    assert replies[:4] == ["echo:m0", "echo:m1", "echo:m2", "echo:after reload"]
    assert replies[4] == "echo:" + "x" * 200_000
    assert echo_server.connections == 1


def test_websocket_idle_timeout_closes_the_tunnel(portico, echo_server):
    port, admin = free_port(), free_port()
    p = portico(config=ws_config(port, admin, echo_server.port,
                                 websocket={"idle_timeout": "300ms"}))

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", ping_interval=None) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 5) == "echo:hi"
            start = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return time.monotonic() - start

    assert asyncio.run(scenario()) < 2


def test_upgrade_refused_by_upstream_is_a_normal_response(portico, upstreams):
    u = upstreams()  # answers 200 to everything: no switch of protocol
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    out = raw(p.port, b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                      b"\r\n", timeout=2)
    assert statuses(out) == [200]
    sent = u.requests[0]
    assert sent.header("upgrade") == "websocket" and sent.header("connection") == "Upgrade"


def test_unrequested_101_is_a_bad_gateway(portico):
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def fake():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
        time.sleep(0.5)
        conn.close()

    threading.Thread(target=fake, daemon=True).start()
    p = portico(upstreams={"svc": {"targets": [f"127.0.0.1:{listener.getsockname()[1]}"],
                                   "retries": {"attempts": 1}}},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    out = raw(p.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout=2)
    assert statuses(out) == [502]
    listener.close()


def test_secure_websocket_survives_certificate_replacement(portico, echo_server, tmp_path):
    import shutil
    import ssl
    from certs import Pki
    pki = Pki(tmp_path / "pki")
    first = pki.issue("ws1", "first", dns=["ws.test"])
    second = pki.issue("ws2", "second", dns=["ws.test"])
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first[0], cert)
    shutil.copy(first[1], key)
    port, admin = free_port(), free_port()
    cfg = ws_config(port, admin, echo_server.port)
    cfg["server"]["watch_config"] = True
    cfg["listeners"][0]["tls"] = {"certificates": [{"cert": str(cert), "key": str(key)}]}
    p = portico(config=cfg)
    ctx = ssl.create_default_context(cafile=pki.ca_file)

    def served_cn():
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw_sock:
            with ctx.wrap_socket(raw_sock, server_hostname="ws.test") as s:
                return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]

    async def scenario():
        async with websockets.connect(f"wss://127.0.0.1:{port}/ws", ssl=ctx,
                                      server_hostname="ws.test") as ws:
            await ws.send("before")
            first_reply = await asyncio.wait_for(ws.recv(), 5)
            shutil.copy(second[0], cert)
            shutil.copy(second[1], key)
            loop = asyncio.get_running_loop()
            deadline = time.monotonic() + 10
            while await loop.run_in_executor(None, served_cn) != "second":
                assert time.monotonic() < deadline, "certificate not reloaded"
                await asyncio.sleep(0.2)
            await ws.send("after")
            return first_reply, await asyncio.wait_for(ws.recv(), 5)

    import socket
    assert asyncio.run(scenario()) == ("echo:before", "echo:after")


def ws_frame(text):
    """A masked client text frame (RFC 6455 5.2), payload under 126 bytes."""
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def test_websocket_over_http2_extended_connect(portico, echo_server):
    """RFC 8441: the client opens the WebSocket on an HTTP/2 stream; the upstream gets an
    HTTP/1.1 Upgrade; frames flow as DATA both ways, alongside ordinary streams."""
    from h2client import H2Client
    port, admin = free_port(), free_port()
    p = portico(config=ws_config(port, admin, echo_server.port))
    c = H2Client(port)
    c.pump(0.3)  # the server's SETTINGS, with ENABLE_CONNECT_PROTOCOL
    assert c.conn.remote_settings.enable_connect_protocol == 1
    sid = c.request("/ws/chat", method="CONNECT", end=False,
                    headers=[(":protocol", "websocket"), ("sec-websocket-version", "13")])
    deadline = time.monotonic() + 5
    while c.responses[sid].status is None and time.monotonic() < deadline:
        c.pump(0.2)
    assert c.responses[sid].status == 200
    for i in range(3):
        c.send_body(sid, ws_frame(f"hello {i}"))
        want = f"echo:hello {i}".encode()
        deadline = time.monotonic() + 5
        while want not in c.responses[sid].body and time.monotonic() < deadline:
            c.pump(0.2)
        assert c.responses[sid].body.endswith(bytes([0x81, len(want)]) + want)
    # The connection still serves ordinary requests next to the tunnel.
    other = c.request("/ws-not-upgraded")
    assert c.wait(other).status is not None
    assert p.metric("portico_tunnels_active") == 1
    c.conn.end_stream(sid)
    c.flush()
    r = c.wait(sid, timeout=5)
    assert r.ended
    wait_for(lambda: p.metric("portico_tunnels_active") == 0)
    c.close()
