"""Metrics as a real Prometheus server sees them: it scrapes the admin listener, and a PromQL
query through its HTTP API returns the request count of a route. Plus the exposition itself:
per-route histograms and bytes, process figures, OpenMetrics by content negotiation."""
import json
import re
import subprocess
import time
import urllib.parse
import urllib.request

from conftest import base_config, free_port, request, wait_for


def test_prometheus_scrapes_and_counts_a_route(portico, upstreams, tmp_path):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "orders", "match": {"path_prefix": "/orders"}, "upstream": "svc"},
                       {"name": "other", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    p = portico(config=cfg)
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
        "scrape_configs:\n"
        "  - job_name: portico\n"
        f"    static_configs: [ {{ targets: ['127.0.0.1:{p.admin_port}'] }} ]\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT)

    def query(promql):
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                doc = json.loads(r.read())
        except OSError:
            return None
        result = doc["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    try:
        wait_for(lambda: query('up{job="portico"}') == 1, timeout=30, interval=0.25,
                 what="prometheus scraping portico")
        for _ in range(37):
            assert request(p.port, "GET", "/orders/1")[0] == 200
        for _ in range(5):
            assert request(p.port, "GET", "/elsewhere")[0] == 200
        wait_for(lambda: query('sum(portico_requests_total{route="orders"})') == 37,
                 timeout=30, interval=0.25, what="37 requests of route orders in Prometheus")
        assert query('sum(portico_requests_total{route="other",code="2xx"})') == 5
        assert query('portico_request_duration_seconds_count{route="orders"}') == 37
    finally:
        prom.terminate()
        prom.wait(timeout=15)
        log.close()


def test_exposition_has_route_process_and_openmetrics(portico, upstreams):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    p = portico(config=cfg)
    for _ in range(3):
        assert request(p.port, "POST", "/x", body=b"0123456789")[0] == 200
    text = p.settled_metrics()
    assert 'portico_request_duration_seconds_bucket{route="r",le="+Inf"} 3' in text
    assert 'portico_request_bytes_total{route="r"} 30' in text
    assert re.search(r'portico_response_bytes_total\{route="r"\} [1-9]\d+', text)
    assert 'portico_requests_in_flight{route="r"} 0' in text
    assert re.search(r"process_open_fds [1-9]", text)
    assert 'portico_listener_connections_accepted_total{listener="main"} 3' in text
    wait_for(lambda: p.metric("portico_listener_connections_active", 'listener="main"') == 0,
             what="closed connections no longer active")
    assert "process_cpu_seconds_total" in text and "process_start_time_seconds" in text

    req = urllib.request.Request(f"http://127.0.0.1:{p.admin_port}/metrics",
                                 headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(req, timeout=2) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        om = r.read().decode()
    assert om.endswith("# EOF\n")
    assert "# TYPE portico_requests counter" in om
    assert 'portico_requests_total{route="r",code="2xx"} 3' in om
    assert "# TYPE portico_requests_total" not in om


def test_upstream_responses_by_class_and_bytes(portico, upstreams):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    p = portico(config=cfg)
    for path, n in (("/status/200", 3), ("/status/404", 2), ("/status/500", 1)):
        for _ in range(n):
            request(p.port, "POST", path, body=b"0123456789")
    text = p.settled_metrics()
    assert 'portico_upstream_responses_total{upstream="svc",code="2xx"} 3' in text
    assert 'portico_upstream_responses_total{upstream="svc",code="4xx"} 2' in text
    assert 'portico_upstream_responses_total{upstream="svc",code="5xx"} 1' in text
    assert 'portico_upstream_request_bytes_total{upstream="svc"} 60' in text
    route_out = p.metric("portico_response_bytes_total", 'route="r"')
    assert route_out > 0
    assert p.metric("portico_upstream_response_bytes_total", 'upstream="svc"') == route_out
    stats = json.loads(p.admin("/api/stats")[1])
    assert stats["upstreams"][0]["status"] == {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 2, "5xx": 1}


def test_series_count_for_1000_routes(portico, upstreams):
    """The figure docs/observability.md states: 1,000 routes, one request each."""
    u = upstreams()
    routes = [{"name": f"route-{i}", "match": {"path": f"/r/{i}"}, "upstream": "svc"}
              for i in range(1000)]
    p = portico(config=base_config(free_port(), free_port(), {"svc": [u.address]}, routes,
                                   server={"workers": 1}))
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    for i in range(1000):
        conn.request("GET", f"/r/{i}")
        conn.getresponse().read()
    conn.close()
    series = [line for line in p.metrics().splitlines() if line and not line.startswith("#")]
    per_route = [s for s in series if 'route="route-' in s]
    print(f"1,000 routes: {len(series)} series in all, {len(per_route)} per-route")
    assert len(per_route) == 1000 * (1 + 17 + 3)  # 2xx, histogram, bytes x2, in flight
    assert len(series) < 22_000


def test_access_log_sampling_errors_only_and_trace_id(portico, upstreams, tmp_path):
    u = upstreams()
    sampled_log, errors_log = tmp_path / "sampled.log", tmp_path / "errors.log"
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": [
                            {"name": "access-log", "config": {"path": str(sampled_log),
                                                              "sample": 0.0}},
                            {"name": "access-log", "config": {"path": str(errors_log),
                                                              "errors_only": True,
                                                              "fields": ["status", "trace_id"]}}]}])
    p = portico(config=cfg)
    for _ in range(10):
        assert request(p.port, "GET", "/ok")[0] == 200
    assert request(p.port, "GET", "/status/503")[0] == 503
    assert request(p.port, "GET", "/status/404")[0] == 404
    wait_for(lambda: errors_log.exists() and len(errors_log.read_text().splitlines()) == 2,
             what="two error lines")
    time.sleep(0.2)
    # sample 0: only the errors (never sampled away) are in the sampled log.
    assert sorted(json.loads(l)["status"] for l in sampled_log.read_text().splitlines()) == \
        [404, 503]
    lines = sorted((json.loads(l) for l in errors_log.read_text().splitlines()),
                   key=lambda line: line["status"])
    assert lines == [{"status": 404, "trace_id": None}, {"status": 503, "trace_id": None}]


def test_per_consumer_series_top_n_and_other(portico, upstreams):
    u = upstreams()
    consumers = [{"name": f"c{i}", "credentials": {"key-auth": [{"key": f"key-{i}-0123456789"}]}}
                 for i in range(4)]
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                        "plugins": [{"name": "key-auth"},
                                    {"name": "rate-limit", "config": {
                                        "limits": [{"requests": 5, "per": "1m"}],
                                        "key": "consumer"}}]}],
                      server={"metrics": {"consumers_top": 2}})
    cfg["consumers"] = consumers
    p = portico(config=cfg)
    for i, n in enumerate([7, 3, 2, 1]):  # c0 goes over its limit of 5
        for _ in range(n):
            request(p.port, "GET", "/", {"apikey": f"key-{i}-0123456789"})
    text = p.settled_metrics()
    assert 'portico_consumer_requests_total{consumer="c0"} 7' in text
    assert 'portico_consumer_rejections_total{consumer="c0"} 2' in text
    assert 'portico_consumer_requests_total{consumer="c1"} 3' in text
    assert 'portico_consumer_requests_total{consumer="other"} 3' in text  # c2 + c3
    assert 'consumer="c2"' not in text and 'consumer="c3"' not in text


def test_access_log_to_syslog_udp_and_unix(portico, upstreams, tmp_path):
    import socket
    u = upstreams()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    unix_path = str(tmp_path / "log.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind(unix_path)
    unix.settimeout(5)
    try:
        cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                          [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                            "plugins": [
                                {"name": "access-log", "config": {
                                    "path": f"syslog:udp:127.0.0.1:{udp.getsockname()[1]}",
                                    "fields": ["status", "path"]}},
                                {"name": "access-log", "config": {
                                    "path": f"syslog:unix:{unix_path}", "fields": ["status"]}}]}])
        p = portico(config=cfg)
        for path in ("/a", "/b"):
            assert request(p.port, "GET", path)[0] == 200
        got = sorted(udp.recv(65536).decode() for _ in range(2))
        assert got == ['<134>1 - - portico - - - {"status":200,"path":"/a"}',
                       '<134>1 - - portico - - - {"status":200,"path":"/b"}']
        assert unix.recv(65536).decode() == '<134>1 - - portico - - - {"status":200}'
    finally:
        udp.close()
        unix.close()
