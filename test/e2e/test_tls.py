"""TLS termination: SNI certificate choice, versions, ALPN, reload of certificates, client
certificates. Clients are curl and Python's ssl module."""
import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from certs import Pki
from conftest import (base_config, free_port, pipelined_answers, read_until_closed, recv_until,
                      sent_while_stopped, wait_for)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_listener(port, certificates, **extra):
    return {"name": "tls", "listen": f"127.0.0.1:{port}",
            "tls": {"certificates": [{"cert": c, "key": k} for c, k in certificates], **extra}}


def curl(port, host, pki, path="/", *args):
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", pki.ca_file,
                        "--resolve", f"{host}:{port}:127.0.0.1", *args,
                        "-w", "\n%{http_code} %{ssl_verify_result} %{http_version}",
                        f"https://{host}:{port}{path}"], capture_output=True, text=True, timeout=10)
    return r


def served_cn(port, server_name, pki):
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"], s.version(), s.selected_alpn_protocol()


def gateway(portico, upstreams, listener, tmp_path):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                      server={"watch_config": True})
    cfg["listeners"] = [listener]
    return portico(config=cfg), u, cfg


def test_https_request_with_sni_and_wildcard_certificates(portico, upstreams, pki, tmp_path):
    api = pki.issue("api", "api.test", dns=["api.test"])
    wild = pki.issue("wild", "wildcard.test", dns=["*.shop.test"])
    port = free_port()
    p, u, _ = gateway(portico, upstreams, tls_listener(port, [api, wild]), tmp_path)
    r = curl(port, "api.test", pki, "/hello")
    assert r.returncode == 0, r.stderr
    body, _, status = r.stdout.rpartition("\n")
    assert status.split()[0] == "200" and status.split()[1] == "0"
    sent = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert sent["x-forwarded-proto"] == "https"
    assert served_cn(port, "api.test", pki)[0] == "api.test"
    assert served_cn(port, "eu.shop.test", pki)[0] == "wildcard.test"
    assert served_cn(port, "unknown.test", pki)[0] == "api.test"  # the default: the first one
    cn, version, alpn = served_cn(port, "api.test", pki)
    assert version in ("TLSv1.2", "TLSv1.3") and alpn is None


def test_alpn_and_minimum_version(portico, upstreams, pki, tmp_path):
    cert = pki.issue("v13", "v13.test", dns=["v13.test"])
    port = free_port()
    gateway(portico, upstreams, tls_listener(port, [cert], min_version="1.3"), tmp_path)
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="v13.test") as s:
            assert s.version() == "TLSv1.3" and s.selected_alpn_protocol() == "h2"
    old = ssl.create_default_context(cafile=pki.ca_file)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="v13.test")


def test_tls12_offers_only_aead_ecdhe_suites_by_default(portico, upstreams, pki, tmp_path):
    """No CBC suite by default (LUCKY13): a TLS 1.2 client offering only CBC suites is refused;
    one offering GCM gets an ECDHE AEAD suite."""
    cert = pki.issue("ciphers", "ciphers.test", dns=["ciphers.test"])
    port = free_port()
    gateway(portico, upstreams, tls_listener(port, [cert]), tmp_path)
    cbc = ssl.create_default_context(cafile=pki.ca_file)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA256:AES256-SHA")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            cbc.wrap_socket(raw, server_hostname="ciphers.test")
    gcm = ssl.create_default_context(cafile=pki.ca_file)
    gcm.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with gcm.wrap_socket(raw, server_hostname="ciphers.test") as s:
            name = s.cipher()[0]
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name


def test_plain_http_on_a_tls_listener_is_refused(portico, upstreams, pki, tmp_path):
    cert = pki.issue("plain", "plain.test", dns=["plain.test"])
    port = free_port()
    p, u, _ = gateway(portico, upstreams, tls_listener(port, [cert]), tmp_path)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(3)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
    assert not data.startswith(b"HTTP/1.1 200")
    assert u.requests == []


def test_certificate_replaced_on_disk_new_handshakes_use_it(portico, upstreams, pki, tmp_path):
    first = pki.issue("rot1", "first.test", dns=["rot.test"])
    second = pki.issue("rot2", "second.test", dns=["rot.test"])
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first[0], live_cert)
    shutil.copy(first[1], live_key)
    port = free_port()
    p, u, _ = gateway(portico, upstreams, tls_listener(port, [(str(live_cert), str(live_key))]),
                      tmp_path)
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                           server_hostname="rot.test")
    assert served_cn(port, "rot.test", pki)[0] == "first.test"
    # A broken key is refused: the old certificate keeps serving.
    live_key.write_text("not a key")
    wait_for(lambda: p.metric("portico_config_reload_failures_total") >= 1, what="refused reload")
    assert served_cn(port, "rot.test", pki)[0] == "first.test"
    shutil.copy(second[0], live_cert)
    shutil.copy(second[1], live_key)
    wait_for(lambda: served_cn(port, "rot.test", pki)[0] == "second.test", what="new certificate")
    # The connection made before the change still works.
    held.sendall(b"GET /still HTTP/1.1\r\nHost: rot.test\r\n\r\n")
    assert held.recv(100).startswith(b"HTTP/1.1 200")
    held.close()


def test_client_certificate_required(portico, upstreams, pki, tmp_path):
    server = pki.issue("mtls", "mtls.test", dns=["mtls.test"])
    alice = pki.issue("alice", "alice", email="alice@example.com", client=True)
    rogue = pki.issue("mallory", "mallory", client=True, ca=pki.rogue_ca)
    port = free_port()
    p, u, _ = gateway(portico, upstreams, tls_listener(
        port, [server], client_auth={"ca": pki.ca_file, "mode": "required",
                                     "subject_header": "X-Client-Subject",
                                     "san_header": "X-Client-SAN"}), tmp_path)
    ok = curl(port, "mtls.test", pki, "/me", "--cert", alice[0], "--key", alice[1],
              "-H", "X-Client-Subject: forged")
    assert ok.returncode == 0, ok.stderr
    sent = {k.lower(): v for k, v in json.loads(ok.stdout.rpartition("\n")[0])["headers"]}
    assert sent["x-client-subject"] == "CN=alice"
    assert sent["x-client-san"] == "alice@example.com"
    assert curl(port, "mtls.test", pki).returncode != 0  # no certificate: handshake fails
    assert p.metric("portico_tls_handshake_failures_total") >= 1
    assert p.metric("portico_tls_handshakes_total") >= 1
    assert curl(port, "mtls.test", pki, "/", "--cert", rogue[0], "--key", rogue[1]).returncode != 0
    assert len(u.requests) == 1


def test_client_certificate_optional_answers_401_for_untrusted(portico, upstreams, pki, tmp_path):
    server = pki.issue("opt", "opt.test", dns=["opt.test"])
    rogue = pki.issue("eve", "eve", client=True, ca=pki.rogue_ca)
    port = free_port()
    p, u, _ = gateway(portico, upstreams, tls_listener(
        port, [server], client_auth={"ca": pki.ca_file, "mode": "optional",
                                     "subject_header": "X-Client-Subject"}), tmp_path)
    anonymous = curl(port, "opt.test", pki, "/", "-H", "X-Client-Subject: forged")
    assert anonymous.stdout.rpartition("\n")[2].startswith("200")
    sent = {k.lower(): v for k, v in json.loads(anonymous.stdout.rpartition("\n")[0])["headers"]}
    assert "x-client-subject" not in sent  # a forged identity header never passes
    bad = curl(port, "opt.test", pki, "/", "--cert", rogue[0], "--key", rogue[1])
    body, _, status = bad.stdout.rpartition("\n")
    assert status.startswith("401") and json.loads(body)["status"] == 401


def test_bad_certificate_config_is_refused_at_validate(pki, tmp_path):
    from conftest import PORTICO_BIN
    cert = pki.issue("mismatch", "m.test", dns=["m.test"])
    other = pki.issue("other", "o.test", dns=["o.test"])
    cfg = base_config(free_port(), free_port(), {"svc": ["127.0.0.1:1"]},
                      [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    cfg["listeners"] = [tls_listener(free_port(), [(cert[0], other[1])])]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"listeners[0].tls: cannot load key {other[1]}" in r.stderr
    assert "key values mismatch" in r.stderr


class HttpsUpstream:
    """An HTTPS upstream (standard library), optionally requiring client certificates.
    Records per connection whether the TLS session was resumed."""

    def __init__(self, cert, ca_for_clients=None):
        import http.server
        import threading
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        if ca_for_clients:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(ca_for_clients)
        self.connections, self.resumed, self.peers = 0, 0, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()

            def do_GET(self):
                body = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                tls = ctx.wrap_socket(sock, server_side=True)
                outer.connections += 1
                outer.resumed += 1 if tls.session_reused else 0
                peer = tls.getpeercert()
                outer.peers.append(dict(x[0] for x in peer["subject"]) if peer else None)
                return tls, addr

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def https_gateway(portico, upstream_port, tls):
    return portico(upstreams={"secure": {"targets": [f"127.0.0.1:{upstream_port}"], "tls": tls,
                                         "retries": {"attempts": 1}}},
                   routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "secure"}],
                   server={"workers": 1})


def test_upstream_over_tls_with_verification_pooling_and_resumption(portico, pki):
    from conftest import request
    up = HttpsUpstream(pki.issue("backend", "backend.internal", dns=["backend.internal"]))
    try:
        p = https_gateway(portico, up.port, {"ca": pki.ca_file, "server_name": "backend.internal"})
        for i in range(5):
            s, _, body = request(p.port, "GET", f"/r{i}")
            assert s == 200 and json.loads(body) == {"path": f"/r{i}"}
        assert up.connections == 1  # pooled TLS connection reused
        # A second connection resumes the first one's session.
        import socket as _s
        conns = [_s.create_connection(("127.0.0.1", p.port)) for _ in range(2)]
        for c in conns:
            c.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        for c in conns:
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
            c.close()
        assert up.connections >= 2 and up.resumed >= 1
        wrong = https_gateway(portico, up.port, {"ca": pki.ca_file, "server_name": "other.internal"})
        s, _, body = request(wrong.port, "GET", "/")
        assert s == 502  # the certificate does not name other.internal
        untrusted = https_gateway(portico, up.port, {"ca": pki.rogue_ca_file,
                                                     "server_name": "backend.internal"})
        assert request(untrusted.port, "GET", "/")[0] == 502
        unverified = https_gateway(portico, up.port, {"verify": False})
        assert request(unverified.port, "GET", "/")[0] == 200
    finally:
        up.stop()


def test_mutual_tls_to_the_upstream(portico, pki):
    from conftest import request
    client = pki.issue("gateway-client", "portico-gateway", client=True)
    up = HttpsUpstream(pki.issue("mtls-backend", "mb.internal", dns=["mb.internal"]),
                       ca_for_clients=pki.ca_file)
    try:
        with_cert = https_gateway(portico, up.port, {"ca": pki.ca_file, "server_name": "mb.internal",
                                                     "client_cert": client[0],
                                                     "client_key": client[1]})
        assert request(with_cert.port, "GET", "/")[0] == 200
        assert up.peers[-1] == {"commonName": "portico-gateway"}
        without = https_gateway(portico, up.port, {"ca": pki.ca_file, "server_name": "mb.internal"})
        assert request(without.port, "GET", "/")[0] == 502
    finally:
        up.stop()


def test_sessions_resume_across_a_config_reload(portico, upstreams, pki, tmp_path):
    cert = pki.issue("resume", "resume.test", dns=["resume.test"])
    port = free_port()
    p, u, cfg = gateway(portico, upstreams, tls_listener(port, [cert]), tmp_path)
    ctx = ssl.create_default_context(cafile=pki.ca_file)

    def get(session=None):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="resume.test", session=session) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: resume.test\r\nConnection: close\r\n\r\n")
                while s.recv(65536):
                    pass  # reading lets TLS 1.3 session tickets arrive
                return s.session, s.session_reused

    session, reused = get()
    assert not reused
    assert get(session)[1]  # resumed
    cfg["routes"].append({"name": "extra", "match": {"path": "/extra"}, "upstream": "svc"})
    p.reload(cfg)
    assert p.version() == 2
    assert get(session)[1]  # the ticket key outlived the reload


def test_health_probes_check_the_upstream_certificate_like_traffic(portico, pki):
    """Probes connect to the target's address but verify the certificate for the upstream's
    server_name (or the target's host name), as requests do: a certificate naming only a DNS
    name keeps the target healthy; one that names something else makes it unhealthy."""
    import time
    from conftest import wait_for
    up = HttpsUpstream(pki.issue("probed", "probed.internal", dns=["probed.internal"]))

    def gateway(server_name):
        return portico(upstreams={"secure": {
                           "targets": [f"127.0.0.1:{up.port}"],
                           "tls": {"ca": pki.ca_file, "server_name": server_name},
                           "health_check": {"path": "/health", "interval": "100ms",
                                            "timeout": "1s", "unhealthy_threshold": 1,
                                            "healthy_threshold": 1}}},
                       routes=[{"name": "all", "match": {"path_prefix": "/"},
                                "upstream": "secure"}],
                       server={"workers": 1})

    def state(p):
        return json.loads(p.admin("/upstreams")[1])["upstreams"][0]["targets"][0]

    try:
        good = gateway("probed.internal")
        before = up.connections
        wait_for(lambda: up.connections >= before + 3, timeout=5, what="three probes")
        assert state(good)["active_check"] == "healthy" and state(good)["healthy"] is True
        good.stop()
        bad = gateway("other.internal")
        wait_for(lambda: state(bad)["active_check"] == "unhealthy", timeout=5,
                 what="the probe refusing a certificate for another name")
        time.sleep(0.3)
        assert state(bad)["healthy"] is False
    finally:
        up.stop()


def test_health_probes_present_the_client_certificate(portico, pki):
    from conftest import wait_for
    client = pki.issue("probe-client", "portico-prober", client=True)
    up = HttpsUpstream(pki.issue("mtls-probed", "mp.internal", dns=["mp.internal"]),
                       ca_for_clients=pki.ca_file)
    try:
        p = portico(upstreams={"secure": {
                        "targets": [f"127.0.0.1:{up.port}"],
                        "tls": {"ca": pki.ca_file, "server_name": "mp.internal",
                                "client_cert": client[0], "client_key": client[1]},
                        "health_check": {"path": "/health", "interval": "100ms",
                                         "unhealthy_threshold": 1, "healthy_threshold": 1}}},
                    routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "secure"}],
                    server={"workers": 1})
        wait_for(lambda: len(up.peers) >= 3, timeout=5, what="three probes")
        assert all(peer == {"commonName": "portico-prober"} for peer in up.peers)
        target = json.loads(p.admin("/upstreams")[1])["upstreams"][0]["targets"][0]
        assert target["active_check"] == "healthy"
    finally:
        up.stop()


def test_pipelined_answers_over_tls_to_a_client_that_does_not_read_arrive_whole(
        portico, upstreams, pki, tmp_path):
    """Over TLS too: an answer OpenSSL could not write at once (the client stopped reading) is
    finished by resuming the same record when the client reads again; all arrive whole."""
    cert = pki.issue("pipe", "pipe.test", dns=["pipe.test"])
    port = free_port()
    u = upstreams()
    pad = "p" * 6000  # a ~6 KiB response field: big answers to small requests
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": [{"name": "headers",
                                     "config": {"response": {"set": {"X-Pad": pad}}}}]}],
                      server={"workers": 1})
    cfg["listeners"] = [tls_listener(port, [cert])]
    portico(config=cfg)
    count = 1000  # ~6.5 MB of answers to ~90 KB of requests
    reqs = b"".join(b"GET /p/%d HTTP/1.1\r\nHost: pipe.test\r\n\r\n" % i for i in range(count))
    reqs += b"GET /last HTTP/1.1\r\nHost: pipe.test\r\nConnection: close\r\n\r\n"
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="pipe.test") as s:
            s.sendall(reqs)
            time.sleep(1.0)  # nothing read meanwhile: Portico's writes to this client block
            out = b""
            while True:
                try:
                    chunk = s.recv(1 << 20)
                except (ssl.SSLEOFError, ConnectionResetError):
                    break  # closed after the last answer without close_notify
                if not chunk:
                    break
                out += chunk
    answers = pipelined_answers(out)
    assert all(head.startswith(b"HTTP/1.1 200 ") and b"\r\nx-pad: " + pad.encode() in head.lower()
               for head, _ in answers)
    targets = [json.loads(body)["target"] for _, body in answers]
    assert targets == [f"/p/{i}" for i in range(count)] + ["/last"]


def fin_without_close_notify(s):
    """Half-closes a TLS socket's TCP connection without close_notify (the wrapped socket took
    over the plain one's descriptor: shut down a duplicate)."""
    with socket.fromfd(s.fileno(), socket.AF_INET, socket.SOCK_STREAM) as fin:
        fin.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("requests", [1, 3])
def test_tls_client_that_half_closes_after_its_requests_gets_answers_then_the_close(
        portico, upstreams, pki, tmp_path, requests):
    """As the plain test in test_connections: requests and a FIN without close_notify reach the
    stopped worker as one epoll event. The first read of a request over TLS is a plain recv(),
    blind to the FIN behind its bytes; Portico answers, then finds that FIN once the connection
    has been idle 100 ms and closes — not at the 60 s idle timeout. When a read does see the FIN
    it is a clean end too: no decode_error alert (an SSLError other than EOF fails the test)."""
    cert = pki.issue("half", "half.test", dns=["half.test"])
    port = free_port()
    p, _, _ = gateway(portico, upstreams, tls_listener(port, [cert]), tmp_path)
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="half.test") as s:
            time.sleep(0.05)  # the handshake's last bytes read, and the request's read waiting

            def requests_then_fin():
                s.sendall(b"".join(b"GET /hc/%d HTTP/1.1\r\nHost: half.test\r\n\r\n" % i
                                   for i in range(requests)))
                fin_without_close_notify(s)
            sent_while_stopped(p, requests_then_fin)
            out, elapsed = read_until_closed(s)
    assert [head.split(b" ")[1] for head, _ in pipelined_answers(out)] == [b"200"] * requests
    assert elapsed < 3, f"closed after {elapsed:.1f} s"


def test_tls_client_closing_without_close_notify_gets_no_alert(portico, upstreams, pki, tmp_path):
    """A client that half-closes without close_notify after its answer (its FIN reaches a
    waiting read): Portico ends the connection cleanly, as nginx does, instead of OpenSSL 3's
    decode_error alert for an "unexpected EOF"."""
    cert = pki.issue("eof", "eof.test", dns=["eof.test"])
    port = free_port()
    gateway(portico, upstreams, tls_listener(port, [cert]), tmp_path)
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="eof.test") as s:
            s.sendall(b"GET /eof HTTP/1.1\r\nHost: eof.test\r\n\r\n")
            out = b""
            while not (b"\r\n\r\n" in out and out.endswith(b"}")):
                chunk = s.recv(65536)
                assert chunk, "closed before the answer"
                out += chunk
            assert out.startswith(b"HTTP/1.1 200 ")
            time.sleep(0.05)  # Portico waits for the next request
            fin_without_close_notify(s)
            rest, _ = read_until_closed(s)  # an alert would raise ssl.SSLError here
            assert rest == b""


class CloseDelimitedTlsUpstream:
    """A TLS upstream that answers each connection's request with a body delimited by the
    connection's end (no Content-Length, no chunking) and then closes the TCP connection
    without close_notify, as many servers do."""

    def __init__(self, cert, body):
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert)
        self.body = body
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as tls:
                    recv_until(tls, b"\r\n\r\n")
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                b"Connection: close\r\n\r\n" + self.body)
                    time.sleep(0.05)  # the body's records reach Portico before the FIN
                    fin_without_close_notify(tls)
            except (OSError, ssl.SSLError):
                pass

    def stop(self):
        self.listener.close()


def test_upstream_answer_ending_without_close_notify_is_relayed_whole(portico, pki):
    """An upstream over TLS that ends a close-delimited answer with a FIN and no close_notify:
    OpenSSL 3 calls that an "unexpected EOF" error (the upstream context keeps it strict). The
    relay of a close-delimited body ends at the connection's end however it comes, so the
    answer arrives whole, closed after it as the upstream closed, as nginx relays it."""
    from conftest import request
    body = b"close-delimited " * 1000
    up = CloseDelimitedTlsUpstream(pki.issue("eof-up", "eofup.internal",
                                             dns=["eofup.internal"]), body)
    try:
        p = https_gateway(portico, up.port, {"ca": pki.ca_file, "server_name": "eofup.internal"})
        for _ in range(3):
            status, _, got = request(p.port, "GET", "/eof")
            assert status == 200 and got == body, (status, len(got))
    finally:
        up.stop()
