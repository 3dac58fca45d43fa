"""Access-log lines as templates, and the HTTP sink: batched JSON POSTs to a collector, never
slowing requests down when the collector is slow or gone (lines are dropped and counted)."""
import http.server
import json
import re
import threading
import time

import pytest

from conftest import SLOW, base_config, free_port, request, wait_for


class Collector:
    """An HTTP log collector: records each POST's headers and parsed JSON body."""

    def __init__(self, delay=0.0, status=200):
        self.posts = []
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                try:
                    posts.append((dict(self.headers), json.loads(body)))
                except ValueError:
                    print("BAD BODY", body[:300])
                    raise
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/logs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lines(self):
        return [line for _, batch in list(self.posts) for line in batch]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    started = []

    def make(**kw):
        c = Collector(**kw)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


def gateway(portico, u, log_config):
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": [{"name": "access-log", "config": log_config}]}])
    return portico(config=cfg)


def test_template_lines_to_a_file(portico, upstreams, tmp_path):
    log = tmp_path / "access.log"
    p = gateway(portico, upstreams(), {
        "path": str(log),
        "template": '$client "$method $path" $status $bytes_in $route:$consumer $$ $latency_ms'})
    assert request(p.port, "POST", "/orders?id=7", body=b"12345")[0] == 200
    wait_for(lambda: log.exists() and log.read_text().endswith("\n"), what="a log line")
    line = log.read_text().splitlines()[0]
    assert re.fullmatch(r'127\.0\.0\.1 "POST /orders\?id=7" 200 5 r:- \$ \d+\.\d{3}', line), line


def test_template_with_an_unknown_field_is_refused(portico, upstreams, tmp_path):
    from conftest import validate
    cfg = base_config(free_port(), free_port(), {"svc": ["127.0.0.1:1"]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": [{"name": "access-log", "config": {
                            "path": "stdout", "template": "$status $nope"}}]}])
    code, out = validate(cfg, tmp_path)
    assert code != 0 and 'unknown field "$nope"' in out and "template" in out


def test_http_sink_posts_json_batches(portico, upstreams, collector):
    c = collector()
    p = gateway(portico, upstreams(), {
        "path": c.url, "fields": ["status", "path"],
        "http": {"batch_size": 10, "flush_interval": "200ms",
                 "headers": {"Authorization": "Bearer log-token"}}})
    for i in range(25):
        assert request(p.port, "GET", f"/item/{i}")[0] == 200
    wait_for(lambda: len(c.lines()) == 25, what="25 lines at the collector")
    assert sorted(l["path"] for l in c.lines()) == sorted(f"/item/{i}" for i in range(25))
    assert all(l["status"] == 200 for l in c.lines())
    sizes = [len(batch) for _, batch in c.posts]
    assert max(sizes) <= 10 and len(sizes) >= 3, sizes
    headers = c.posts[0][0]
    assert headers["Authorization"] == "Bearer log-token"
    assert headers["Content-Type"] == "application/json"


def test_http_sink_sends_template_lines_as_strings(portico, upstreams, collector):
    c = collector()
    p = gateway(portico, upstreams(), {"path": c.url, "template": "$method $path $status",
                                       "http": {"flush_interval": "100ms"}})
    assert request(p.port, "GET", "/a")[0] == 200
    wait_for(lambda: c.lines() == ["GET /a 200"], what="one template line")


def test_slow_or_down_collector_never_slows_requests(portico, upstreams, collector):
    slow = collector(delay=3.0)
    down_url = f"http://127.0.0.1:{free_port()}/logs"  # nothing listens: refused
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": [
                            {"name": "access-log", "config": {
                                "path": slow.url, "fields": ["path"],
                                "http": {"batch_size": 5, "flush_interval": "50ms",
                                         "timeout": "500ms", "max_buffer": "2KB"}}},
                            {"name": "access-log", "config": {
                                "path": down_url, "fields": ["path"],
                                "http": {"flush_interval": "50ms"}}}]}])
    p = portico(config=cfg)
    start = time.monotonic()
    for i in range(300):
        assert request(p.port, "GET", f"/x/{i:04d}")[0] == 200
    elapsed = time.monotonic() - start
    # Reference: the same 300 requests cost well under a second here; the sinks add nothing.
    assert elapsed < (24 if SLOW else 6), elapsed
    # The slow collector's small buffer overflowed, and the refused batches were given up on
    # after their retries (1 s, then 2 s): both counted as dropped lines.
    wait_for(lambda: p.metric("portico_access_log_dropped_total") >= 300 + 1, timeout=15,
             interval=0.25, what="dropped lines counted")
