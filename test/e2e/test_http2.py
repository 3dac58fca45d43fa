"""HTTP/2 from clients: h2c with prior knowledge and h2 over TLS (ALPN), routes and filters as
over HTTP/1.1, request and response bodies with flow control, abuse protections, GOAWAY on
drain and on listener changes, connections kept across reloads. Clients: curl, nghttp, h2load
and python3-h2 for frame-level control."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import h2.errors
import h2.settings
import pytest

from certs import Pki
from conftest import base_config, free_port, validate, wait_for
from h2client import H2Client, Response


def curl_h2(port, path, *args, scheme="http", host="127.0.0.1"):
    flag = "--http2-prior-knowledge" if scheme == "http" else "--http2"
    r = subprocess.run(["curl", "-sS", "--max-time", "10", flag, *args,
                        "-D", "-", "-w", "\n%{http_code} %{http_version}",
                        f"{scheme}://{host}:{port}{path}"],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    head, _, rest = out.partition(b"\r\n\r\n")
    body, _, status = rest.rpartition(b"\n")
    headers = {}
    for line in head.decode().split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    code, version = status.decode().split()
    return int(code), version, headers, body


def svc_routes(extra=None):
    routes = [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}]
    return (extra or []) + routes


def test_h2_paths_are_normalised_as_http1_paths_are(portico, upstreams):
    # A route on /public/ must not reach the rest of the service: over HTTP/2 `/public/../admin`
    # was forwarded as it was (the upstream resolved it to /admin), and over both protocols
    # `/public/%2E%2E/admin`. Now both read as /admin (no route: 404); one climbing above the
    # root is refused; escaped unreserved characters reach the upstream decoded.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=[
        {"name": "pub", "match": {"path_prefix": "/public/"}, "upstream": "svc"}])
    def get(path, h2):
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--path-as-is", "-w", "\n%{http_code}",
                            "--http2-prior-knowledge" if h2 else "--http1.1",
                            f"http://127.0.0.1:{p.port}{path}"], capture_output=True, timeout=20)
        body, _, code = r.stdout.rpartition(b"\n")
        return int(code), body

    for h2 in [True, False]:
        sent = len(u.requests)
        for path in ["/public/../admin", "/public/%2E%2E/admin", "/public/%2e/../admin"]:
            code, body = get(path, h2)
            assert code == 404, (h2, path, body)
            assert json.loads(body)["error"] == "no route matched"
        assert get("/public/../../admin", h2)[0] == 400, h2
        # `%2` kept would make `%2E` of the `E` decoded after it: a dot to the upstream.
        assert get("/public/%2%45%2%45/admin", h2)[0] == 400, h2
        # Upstreams that decode `%2F` (or split on `\`) before resolving would climb.
        for path in ["/public/..%2Fadmin", "/public/x%5C..%5Cadmin", "/public/..\\admin"]:
            assert get(path, h2)[0] == 400, (h2, path)
        # Java servers drop `;parameters` before resolving: `..;` is `..` to a Tomcat.
        for path in ["/public/..;/admin", "/public/.;/x", "/public/..;jsessionid=1/admin"]:
            code, body = get(path, h2)
            assert code == 400, (h2, path)
            assert "parameters" in json.loads(body)["error"], body
        assert len(u.requests) == sent, h2
        code, body = get("/public/%7Eann/./x?q=%2E%2E", h2)
        assert code == 200, (h2, body)
        assert json.loads(body)["target"] == "/public/~ann/x?q=%2E%2E"


def test_h2c_prior_knowledge_get_and_post(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    code, version, headers, body = curl_h2(p.port, "/hello?x=1", "-H", "X-Custom: yes")
    assert (code, version) == (200, "2")
    seen = json.loads(body)
    assert seen["method"] == "GET" and seen["target"] == "/hello?x=1"
    sent = u.requests[-1]
    assert sent.header("host") == f"127.0.0.1:{p.port}"
    assert sent.header("x-custom") == "yes"
    assert sent.header("x-forwarded-proto") == "http"
    assert sent.header("x-forwarded-for") == "127.0.0.1"
    assert len(headers["x-request-id"]) == 32 and headers["x-upstream"] == "upstream"
    assert "portico" in headers["via"]

    # A body that arrives whole goes with its length; one streamed without a length is chunked.
    payload = os.urandom(300_000)
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                        "--data-binary", "@-", f"http://127.0.0.1:{p.port}/upload"],
                       input=payload, capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["body_len"] == len(payload)
    c = H2Client(p.port)
    sid = c.request("/stream-up", method="POST", body=b"a" * 1000, end=False)
    c.send_body(sid, b"b" * 700_000)  # beyond the stream window: the upstream must take it
    time.sleep(0.1)
    c.send_body(sid, b"c" * 10, end=True)
    r = c.wait(sid)
    assert r.status == 200 and json.loads(r.body)["body_len"] == 701_010
    assert u.requests[-1].header("transfer-encoding") == "chunked"
    c.close()
    assert p.metric("portico_http2_streams_total") >= 3


def test_h2_connection_idle_for_a_second_serves_new_bursts(portico, upstreams):
    # A connection with no stream running for a second lets its spare stream objects go (the
    # worker's sweeper); the next burst on it gets new ones.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    c = H2Client(p.port)
    for burst in range(3):
        sids = [c.request(f"/burst{burst}/{i}") for i in range(24)]
        for sid in sids:
            r = c.wait(sid)
            assert r.status == 200
            assert json.loads(r.body)["target"].startswith(f"/burst{burst}/")
        time.sleep(1.2 if burst == 0 else 0.05)
    c.close()
    assert len(u.requests) == 72


def test_h2_local_replies_routes_and_filters_behave_as_over_http1(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "maint", "match": {"path_prefix": "/maint"},
                         "plugins": [{"name": "static-response", "config": {
                             "status": 503, "headers": {"Retry-After": "7"}, "body": "later"}}]},
                        {"name": "only-get", "match": {"path_prefix": "/ro", "methods": ["GET"]},
                         "upstream": "svc"},
                        {"name": "hdr", "match": {"path_prefix": "/h"}, "upstream": "svc",
                         "plugins": [{"name": "headers", "config": {
                             "request": {"set": {"X-Env": "prod"}},
                             "response": {"add": {"X-Served-By": "portico"}}}}]}])
    code, _, headers, body = curl_h2(p.port, "/nowhere")
    assert code == 404
    err = json.loads(body)
    assert err["status"] == 404 and err["request_id"] == headers["x-request-id"]
    code, _, headers, _ = curl_h2(p.port, "/ro", "-X", "POST")
    assert code == 405 and headers["allow"] == "GET"
    code, _, headers, body = curl_h2(p.port, "/maint")
    assert (code, body, headers["retry-after"]) == (503, b"later", "7")
    code, _, headers, _ = curl_h2(p.port, "/h")
    assert code == 200 and headers["x-served-by"] == "portico"
    assert u.requests[-1].header("x-env") == "prod"
    code, _, headers, body = curl_h2(p.port, "/maint", "-I")
    assert code == 503 and headers["content-length"] == "5"


def test_h2_many_concurrent_streams_with_h2load_and_nghttp(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "20",
                        f"http://127.0.0.1:{p.port}/status/200"],
                       capture_output=True, text=True, timeout=60)
    assert "2000 succeeded" in r.stdout, r.stdout + r.stderr
    assert "2000 2xx" in r.stdout
    r = subprocess.run(["nghttp", "-n", "-s", f"http://127.0.0.1:{p.port}/a",
                        f"http://127.0.0.1:{p.port}/b", f"http://127.0.0.1:{p.port}/c"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("/a") + r.stdout.count("/b") + r.stdout.count("/c") >= 3


def test_h2_large_download_and_chunked_response(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "30",
                        f"http://127.0.0.1:{p.port}/bytes/50000000", "-o", "/dev/null",
                        "-w", "%{size_download} %{http_code}"],
                       capture_output=True, text=True, timeout=40)
    assert r.stdout == "50000000 200", r.stderr
    code, _, headers, body = curl_h2(p.port, "/chunked")
    assert (code, body) == (200, b"hello world")
    assert "transfer-encoding" not in headers


def test_sse_over_h2_each_event_arrives_promptly(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    c = H2Client(p.port)
    sid = c.request("/stream/5/200")
    r = c.wait(sid, timeout=10)
    assert r.status == 200 and r.ended and r.reset is None
    events = [e for e in r.body.split(b"\n\n") if e]
    assert len(events) == 5
    # Each event is stamped by the upstream when sent; it must reach us within 50 ms.
    received = r.data_times
    sent = [float(e.split()[2]) for e in events]
    offset = time.time() - time.monotonic()
    lags = [rt + offset - st for rt, st in zip(received, sent)]
    assert max(lags) < 0.05, lags
    c.close()


def test_rapid_reset_gets_goaway_and_is_counted(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    p.reload({**base_config(p.port, p.admin_port, {"svc": [u.address]}, svc_routes()),
              "listeners": [{"name": "main", "listen": f"127.0.0.1:{p.port}",
                             "http2": {"max_resets_per_second": 20}}]})
    c = H2Client(p.port)
    for _ in range(200):
        try:  # the gateway may close the connection while we are still sending
            sid = c.request("/sleep/500")
            c.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
            c.flush()
        except OSError:
            break
    assert c.wait_closed(5)
    assert c.goaway and c.goaway[0] == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    wait_for(lambda: p.metric("portico_http2_protocol_closes_total") >= 1)
    # The gateway keeps serving others.
    assert curl_h2(p.port, "/status/200")[0] == 200


def test_continuation_flood_closes_the_connection(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")

    def frame(ftype, flags, sid, payload):
        return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
            sid.to_bytes(4, "big") + payload

    # HEADERS without END_HEADERS (:method GET, literal header), then endless CONTINUATIONs.
    s.sendall(frame(1, 0x0, 1, b"\x82\x84\x86\x41\x07gw.test"))
    closed = False
    try:
        for i in range(5000):
            s.sendall(frame(9, 0x0, 1, b"\x40\x03x-a\x05hello"))
    except OSError:
        closed = True
    s.settimeout(3)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    assert closed or b"\x07" in data  # EOF, or at least a GOAWAY frame (type 7)
    wait_for(lambda: p.metric("portico_http2_protocol_closes_total") >= 1)
    assert u.requests == []
    assert curl_h2(p.port, "/status/200")[0] == 200


def test_zero_window_stall_resets_the_stream(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes(),
                server={"limits": {"idle_timeout": "1s"}})
    # A client that never opens its window: the response cannot leave; the stream must end.
    c = H2Client(p.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.pump(0.2)
    sid = c.request("/bytes/5000000")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and c.responses[sid].reset is None:
        if not c.pump(0.5):
            break
    assert c.responses[sid].reset is not None or c.closed
    wait_for(lambda: p.metric("portico_http2_stream_stalls_total") >= 1)
    c.close()


def test_header_list_over_the_limit_is_refused(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    c = H2Client(p.port)
    c.pump(0.2)
    sid = c.request("/", headers=[("x-big", "v" * 40000), ("x-big2", "w" * 40000)])
    r = c.wait(sid, timeout=5)
    assert r.status is None or r.status == 431
    assert r.reset is not None or c.closed or r.status == 431
    assert u.requests == []
    c.close()


def test_stream_routed_by_its_authority_tells_the_upstream_that_host(portico, upstreams):
    # A Host field beside :authority (nghttp2 lets one through) reached the upstream while the
    # route was chosen by :authority: a request routed as gw.test arrived as evil.test. Raw
    # bytes from 0x80 in :path (nghttp2 refuses controls, space and DEL only) went upstream.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    c = H2Client(p.port)
    c.conn.config.validate_outbound_headers = False  # python3-h2 would refuse to send these
    c.conn.config.normalize_outbound_headers = False
    routed = c.request("/x", headers=[("host", "evil.test")], authority="GW.test")
    r = c.wait(routed)
    assert r.status == 200, r.body
    assert u.requests[-1].header("host") == "gw.test"
    assert u.requests[-1].header("x-forwarded-host") == "gw.test"
    sent = len(u.requests)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(b":method", b"GET"), (b":path", b"/x\x80y"), (b":scheme", b"http"),
                              (b":authority", b"gw.test")], end_stream=True)
    c.responses[sid] = Response()
    c.flush()
    r = c.wait(sid)
    assert r.status == 400, r.body
    assert len(u.requests) == sent
    c.close()


def test_cookie_crumbs_reach_an_http1_upstream_as_one_cookie_field(portico, upstreams):
    # Browsers send one cookie field per pair over HTTP/2 (HPACK indexes each); forwarded as
    # they came, the HTTP/1.1 upstream got two Cookie fields and read the first (RFC 9113
    # §8.2.3 asks for them to be joined with "; ").
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    c = H2Client(p.port)
    sid = c.request("/x", headers=[("cookie", "session=abc"), ("accept", "*/*"),
                                   ("cookie", "theme=dark"), ("cookie", "lang=en")])
    r = c.wait(sid)
    assert r.status == 200, r.body
    assert u.requests[-1].all("cookie") == ["session=abc; theme=dark; lang=en"]
    c.close()


def test_stream_with_a_lower_case_method_is_refused_as_over_http1(portico, upstreams):
    # `delete` missed a route listing DELETE and reached the catch-all route's upstream, which
    # may upper-case it (Django, Werkzeug) and delete: both protocols refuse it with 400.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "guarded", "match": {"path_prefix": "/", "methods": ["DELETE"]},
                         "plugins": [{"name": "static-response", "config": {"status": 403}}]},
                        {"name": "open", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    c = H2Client(p.port)
    sid = c.request("/x", method="delete")
    r = c.wait(sid)
    assert r.status == 400, r.body
    assert json.loads(r.body)["request_id"]
    assert not u.requests
    sid = c.request("/x", method="DELETE")
    assert c.wait(sid).status == 403
    c.close()


def test_upstream_trailers_reach_the_client_without_connection_or_framing_fields(portico,
                                                                              upstreams):
    # An HTTP/1.1 upstream's chunked trailers were relayed as they came: a Connection field
    # among them made the HTTP/2 client reset the stream (RFC 9113 §8.2.2), losing the response.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    c = H2Client(p.port)
    sid = c.request("/trailers")
    r = c.wait(sid)
    assert r.status == 200 and r.reset is None
    assert r.body == b"hello"
    assert r.trailers == {"x-checksum": "42"}
    sid = c.request("/x")  # the connection serves on
    assert c.wait(sid).status == 200
    c.close()


def test_stream_over_the_uri_or_header_count_limit_is_refused_as_over_http1(portico, upstreams):
    # server.limits.max_uri_bytes and max_headers held HTTP/1.1 heads only: an HTTP/2 stream
    # with a 2,000-byte path or 30 fields went upstream.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes(),
                server={"limits": {"max_uri_bytes": 1024, "max_headers": 20}})
    c = H2Client(p.port)
    long_path = c.request("/" + "a" * 2000)
    many = c.request("/", headers=[(f"x-{i}", "v") for i in range(30)])
    fine = c.request("/" + "a" * 1000, headers=[(f"x-{i}", "v") for i in range(15)])
    for sid, status, error in [(long_path, 414, "URI too long"), (many, 431, "too many headers"),
                               (fine, 200, None)]:
        r = c.wait(sid, timeout=5)
        assert r.status == status, (sid, r.status, r.body)
        if error:
            assert json.loads(r.body)["error"] == error
    assert len(u.requests) == 1
    c.close()


def test_goaway_on_drain_lets_in_flight_streams_finish(portico, upstreams):
    # nghttp rather than python3-h2, which drops streams still open when GOAWAY arrives.
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]}, routes=svc_routes())
    client = subprocess.Popen(["nghttp", "-v", f"http://127.0.0.1:{p.port}/sleep/800"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: len(u.requests) == 1)
    p.proc.send_signal(signal.SIGTERM)
    out, _ = client.communicate(timeout=10)
    assert "recv GOAWAY frame" in out and "NO_ERROR" in out
    assert ":status: 200" in out and client.returncode == 0, out
    assert out.index("recv GOAWAY frame") < out.index(":status: 200")
    assert p.proc.wait(timeout=10) == 0


def test_h2_stream_survives_reloads_and_listener_change_sends_goaway(portico, upstreams):
    u = upstreams()
    u2 = upstreams("second")
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, svc_routes())
    p = portico(config=cfg)
    c = H2Client(p.port)
    sid = c.request("/sleep/1500")
    wait_for(lambda: len(u.requests) == 1)
    # A route and an upstream added: the stream in flight and the connection go on.
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["upstreams"].append({"name": "svc2", "targets": [{"address": u2.address}]})
    cfg2["routes"].insert(0, {"name": "new", "match": {"path_prefix": "/new"}, "upstream": "svc2"})
    p.reload(cfg2)
    r = c.wait(sid, timeout=10)
    assert r.status == 200 and r.reset is None, (r.reset, c.goaway, c.closed, p.logs()[-2000:])
    sid2 = c.request("/new/x")
    r2 = c.wait(sid2)
    assert r2.status == 200 and json.loads(r2.body)["upstream"] == "second"
    assert c.goaway is None
    # The listener's HTTP/2 settings change: GOAWAY, and the connection closes once idle.
    cfg3 = json.loads(json.dumps(cfg2))
    cfg3["listeners"][0]["http2"] = {"max_concurrent_streams": 50}
    p.reload(cfg3)
    assert c.wait_closed(5)
    assert c.goaway is not None and c.goaway[0] == 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki-h2"))


def test_h2_over_tls_by_alpn_and_certificate_replacement(portico, upstreams, pki, tmp_path):
    cert, key = pki.issue("h2", "h2.test", dns=["h2.test"])
    live_cert, live_key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    u = upstreams()
    port = free_port()
    cfg = base_config(port, free_port(), {"svc": [u.address]}, svc_routes(),
                      server={"watch_config": True})
    cfg["listeners"] = [{"name": "tls", "listen": f"127.0.0.1:{port}",
                         "tls": {"certificates": [{"cert": live_cert, "key": live_key}]}}]
    p = portico(config=cfg)
    code, version, headers, body = curl_h2(port, "/x", "--cacert", pki.ca_file, "--resolve",
                                           f"h2.test:{port}:127.0.0.1", scheme="https",
                                           host="h2.test")
    assert (code, version) == (200, "2")
    assert u.requests[-1].header("x-forwarded-proto") == "https"
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    c = H2Client(port, tls_context=ctx, server_name="h2.test")
    sid = c.request("/sleep/1500")
    wait_for(lambda: len(u.requests) == 2)
    # The certificate is replaced on disk: the open connection and its stream carry on.
    new_cert, new_key = pki.issue("h2b", "h2b.test", dns=["h2.test"])
    shutil.copy(new_key, live_key)
    shutil.copy(new_cert, live_cert)
    r = c.wait(sid, timeout=10)
    assert r.status == 200 and r.reset is None
    sid = c.request("/again")
    assert c.wait(sid).status == 200
    c.close()
    # http2 disabled on the listener: ALPN picks http/1.1.
    cfg["listeners"][0]["http2"] = {"enabled": False}
    p.reload(cfg)
    code, version, _, _ = curl_h2(port, "/x", "--cacert", pki.ca_file, "--resolve",
                                  f"h2.test:{port}:127.0.0.1", scheme="https", host="h2.test")
    assert (code, version) == (200, "1.1")


def test_h2c_disabled_listener_treats_preface_as_bad_http1(portico, upstreams):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]}, svc_routes())
    cfg["listeners"][0]["http2"] = {"enabled": False}
    p = portico(config=cfg)
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "5",
                        f"http://127.0.0.1:{p.port}/"], capture_output=True, timeout=10)
    assert r.returncode != 0
    assert u.requests == []


def test_invalid_http2_config_is_refused(tmp_path):
    cfg = base_config(free_port(), free_port(), {}, [])
    cfg["listeners"][0]["http2"] = {"max_frame_size": "1KiB", "bogus": 1}
    code, out = validate(cfg, tmp_path)
    assert code != 0
    assert "listeners[0].http2.max_frame_size" in out and "bogus" in out
