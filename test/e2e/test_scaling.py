"""Scaling signals: a load ramp against a slow upstream gives the expected recommendation,
on /metrics and as one webhook event (not a storm) received by a test listener."""
import http.server
import json
import threading
import time

from conftest import base_config, free_port, request


class Webhook:
    def __init__(self):
        events = self.events = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events.append((self.headers["Content-Type"], json.loads(body)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/scale"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def load(port, clients, seconds, path="/sleep/200"):
    stop = time.monotonic() + seconds

    def run():
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            conn.request("GET", path)
            conn.getresponse().read()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads


def test_load_ramp_gives_one_scaling_event(portico, upstreams):
    u = upstreams()
    hook = Webhook()
    try:
        cfg = base_config(free_port(), free_port(), {"svc": {
            "targets": [u.address],
            "scaling": {"target_in_flight": 2, "interval": "1s", "cooldown": "60s",
                        "min_replicas": 1, "max_replicas": 10, "webhook": hook.url}}},
            [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}])
        p = portico(config=cfg)
        # Light load: 2 in flight = 1 replica's worth, as many as there are targets.
        for t in load(p.port, 2, 3):
            t.join()
        assert hook.events == []
        assert p.metric("portico_upstream_recommended_replicas", 'upstream="svc"') == 1
        # Ramp to 8 in flight: 4 replicas' worth.
        for t in load(p.port, 8, 6):
            t.join()
        assert p.metric("portico_upstream_recommended_replicas", 'upstream="svc"') == 4
        assert 6.5 <= p.metric("portico_upstream_in_flight_avg", 'upstream="svc"') <= 8.5
        assert p.metric("portico_upstream_throughput_rps", 'upstream="svc"') > 25
        time.sleep(0.5)
        assert len(hook.events) == 1, hook.events  # one event, not one per interval
        content_type, event = hook.events[0]
        assert content_type == "application/json"
        assert event["upstream"] == "svc"
        assert event["current_targets"] == 1
        assert event["recommended"] == 4
        assert event["previous_recommended"] == 1
        assert 6.5 <= event["figures"]["in_flight_avg"] <= 8.5
        # 200 ms falls in the 100-250 ms bucket; the quantile interpolates inside it.
        assert 0.1 <= event["figures"]["latency_seconds"]["p50"] <= 0.25
        assert event["figures"]["error_ratio"] == 0
        assert p.metric("portico_upstream_scaling_events_total", 'upstream="svc"') == 1
    finally:
        hook.stop()


def test_webhook_is_retried(portico, upstreams):
    u = upstreams()
    hook = Webhook()
    calls = []
    original = hook.server.RequestHandlerClass.do_POST

    def flaky(handler):
        calls.append(time.monotonic())
        if len(calls) < 3:  # the first two deliveries fail
            handler.rfile.read(int(handler.headers["Content-Length"]))
            handler.send_response(503)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        original(handler)

    hook.server.RequestHandlerClass.do_POST = flaky
    try:
        cfg = base_config(free_port(), free_port(), {"svc": {
            "targets": [u.address],
            "scaling": {"target_in_flight": 1, "interval": "500ms", "cooldown": "60s",
                        "webhook": hook.url, "webhook_retries": 3}}},
            [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}])
        p = portico(config=cfg)
        for t in load(p.port, 3, 3):
            t.join()
        deadline = time.monotonic() + 5
        while not hook.events and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(calls) == 3 and len(hook.events) == 1
        assert hook.events[0][1]["recommended"] == 3
    finally:
        hook.stop()
