"""request-size-limit and concurrency-limit, through the real binary."""
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import base_config, free_port, raw, request, statuses, validate


def route_with(u, plugins, workers=2):
    return base_config(free_port(), free_port(), {"svc": [u.address]},
                       [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                         "plugins": plugins}], server={"workers": workers})


def test_request_size_limit(portico, upstreams):
    u = upstreams()
    p = portico(config=route_with(u, [{"name": "request-size-limit",
                                       "config": {"max_body": "1KiB"}}]))
    assert request(p.port, "POST", "/ok", body=b"x" * 1024)[0] == 200
    status, _, body = request(p.port, "POST", "/big", body=b"x" * 1025)
    assert status == 413 and b"request body too large" in body
    # Chunked: refused once the body goes past the limit, never forwarded whole.
    chunked = (b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               b"200\r\n" + b"y" * 512 + b"\r\n") * 1
    chunked += b"300\r\n" + b"y" * 768 + b"\r\n0\r\n\r\n"
    assert statuses(raw(p.port, chunked)) == [413]
    assert [r.target for r in u.requests] == ["/ok"]


def test_concurrency_limit_queue_and_503(portico, upstreams):
    u = upstreams()
    p = portico(config=route_with(u, [{"name": "concurrency-limit",
                                       "config": {"max": 2, "queue": 2,
                                                  "queue_timeout": "1500ms"}}]))

    def slow(_):
        t0 = time.monotonic()
        status = request(p.port, "GET", "/sleep/600")[0]
        return status, time.monotonic() - t0

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(slow, range(6)))
    codes = sorted(s for s, _ in results)
    # 2 run at once, 2 wait for a slot (and then run), 2 find the queue full.
    assert codes == [200, 200, 200, 200, 503, 503], results
    waited = sorted(t for s, t in results if s == 200)
    assert waited[-1] >= 1.1  # the queued ones ran after a first one finished
    fast = [t for s, t in results if s == 503]
    assert max(fast) < 0.5  # refused at once, not after the queue timeout
    # All slots are free again.
    assert request(p.port, "GET", "/")[0] == 200


def test_concurrency_limit_queue_timeout(portico, upstreams):
    u = upstreams()
    p = portico(config=route_with(u, [{"name": "concurrency-limit",
                                       "config": {"max": 1, "queue": 5,
                                                  "queue_timeout": "200ms"}}]))
    holder = threading.Thread(target=lambda: request(p.port, "GET", "/sleep/1500"))
    holder.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    status, h, _ = request(p.port, "GET", "/")
    elapsed = time.monotonic() - t0
    assert status == 503 and h["retry-after"] == "1"
    assert 0.15 <= elapsed < 1.0
    holder.join()
    assert request(p.port, "GET", "/")[0] == 200


def test_traffic_filter_config_errors(tmp_path, upstreams):
    u = upstreams()
    for plugin, message in [
        ({"name": "request-size-limit", "config": {}}, "give max_body"),
        ({"name": "concurrency-limit", "config": {"queue": 3}}, "max"),
        ({"name": "quota", "config": {"limit": 5, "period": "week"}}, "unknown period"),
    ]:
        code, out = validate(route_with(u, [plugin]), tmp_path)
        assert code != 0 and message in out, (plugin, out)


class LimitedUpstream:
    """An upstream with a fixed capacity: `slots` requests at a time, `work` seconds each;
    more wait. Overload shows as latency, as with a real saturated service."""

    def __init__(self, slots=6, work=0.05):
        import http.server
        sem = threading.Semaphore(slots)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with sem:
                    time.sleep(work)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_load_shed_keeps_high_priority_traffic(portico):
    up = LimitedUpstream(slots=6, work=0.05)
    try:
        cfg = base_config(free_port(), free_port(), {"svc": [up.address]},
                          [{"name": "high", "match": {"path_prefix": "/high"}, "upstream": "svc"},
                           {"name": "low", "match": {"path_prefix": "/low"}, "upstream": "svc"}],
                          plugins=[{"name": "load-shed", "config": {
                              "max_in_flight": 8, "target_latency": "100ms",
                              "route_priorities": {"high": 10, "low": 0}}}])
        p = portico(config=cfg)
        results = {"high": [], "low": []}
        stop = time.monotonic() + 4

        def client(route):
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            while time.monotonic() < stop:
                t0 = time.monotonic()
                conn.request("GET", "/" + route)
                r = conn.getresponse()
                r.read()
                results[route].append((r.status, time.monotonic() - t0))

        threads = [threading.Thread(target=client, args=("high",)) for _ in range(4)] + \
                  [threading.Thread(target=client, args=("low",)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        high = [s for s, _ in results["high"]]
        low = [s for s, _ in results["low"]]
        assert high and all(s == 200 for s in high), set(high)
        shed = low.count(503)
        assert shed > 0.3 * len(low), (shed, len(low))
        assert set(low) <= {200, 503}
        high_latency = sorted(t for _, t in results["high"])
        # Capacity 6 x 50 ms: without shedding 20 callers would wait ~170 ms each.
        assert high_latency[len(high_latency) // 2] < 0.15, high_latency[len(high_latency) // 2]
        print(f"load-shed: high {len(high)} all 200, p50 "
              f"{high_latency[len(high_latency) // 2] * 1000:.0f} ms; low {len(low)}, {shed} shed")
    finally:
        up.stop()
