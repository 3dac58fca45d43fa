"""Reloads, drain on SIGTERM, the admin listener and the CLI."""
import json
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import PORTICO_BIN, base_config, free_port, request, wait_for


def wrk(port, seconds, path="/", connections=8):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                          f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + \
        (sum(int(x) for x in errors.groups()) if errors else 0)
    return total, failed, out


def config_with_routes(port, admin, address, n):
    routes = [{"name": f"r{i}", "match": {"path_prefix": f"/svc{i}/api"}, "upstream": "svc"}
              for i in range(n)]
    routes.append({"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"})
    return base_config(port, admin, {"svc": [address]}, routes)


def test_sighup_reload_adds_route_and_bad_reload_is_refused(portico, upstreams):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "a", "match": {"path": "/a"}, "upstream": "svc"}])
    p = portico(config=cfg)
    assert request(p.port, "GET", "/b")[0] == 404
    cfg["routes"].append({"name": "b", "match": {"path": "/b"}, "upstream": "svc"})
    p.reload(cfg)
    assert request(p.port, "GET", "/b")[0] == 200
    assert p.version() == 2

    bad = json.loads(json.dumps(cfg))
    bad["routes"].append({"name": "c", "match": {"path": "/c"}, "upstream": "missing"})
    p.reload(bad)
    assert p.metric("portico_config_reload_failures_total") == 1
    assert p.version() == 2
    assert request(p.port, "GET", "/b")[0] == 200  # the old config keeps serving
    assert 'unknown upstream \\"missing\\"' in p.admin("/config")[1] or \
        "unknown upstream" in p.logs()


def test_file_change_reloads(portico, upstreams):
    u = upstreams()
    cfg = base_config(free_port(), free_port(), {"svc": [u.address]},
                      [{"name": "a", "match": {"path": "/a"}, "upstream": "svc"}],
                      server={"watch_config": True})
    p = portico(config=cfg)
    cfg["routes"].append({"name": "b", "match": {"path": "/b"}, "upstream": "svc"})
    p.write_config(cfg)
    wait_for(lambda: request(p.port, "GET", "/b")[0] == 200, timeout=5, what="file reload")


@pytest.mark.heavy
def test_reload_10000_routes_under_load_loses_nothing(portico, upstreams):
    u = upstreams()
    port, admin = free_port(), free_port()
    p = portico(config=config_with_routes(port, admin, u.address, 10))
    result = {}
    t = threading.Thread(target=lambda: result.update(r=wrk(p.port, 4, "/svc5/api/x")))
    t.start()
    time.sleep(0.5)
    for n in (10000, 5000, 10000):
        p.reload(config_with_routes(port, admin, u.address, n))
        time.sleep(0.5)
    t.join()
    total, failed, out = result["r"]
    assert p.metric("portico_config_reloads_total") == 3
    assert total > 100 and failed == 0, out


@pytest.mark.heavy
def test_sigterm_under_load_finishes_in_flight_requests(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}])
    results = []

    def slow_client():
        results.append(request(p.port, "GET", "/sleep/700")[0])

    clients = [threading.Thread(target=slow_client) for _ in range(8)]
    for c in clients:
        c.start()
    wait_for(lambda: len(u.requests) == 8, what="requests in flight")
    p.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    assert p.admin("/readyz")[0] == 503  # not ready while draining
    for c in clients:
        c.join(timeout=10)
    assert results == [200] * 8
    assert p.proc.wait(timeout=10) == 0


def test_admin_endpoints(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                env={"SECRET_TOKEN": "hunter2"},
                plugins=[{"name": "headers",
                          "config": {"request": {"set": {"X-Token": "${SECRET_TOKEN}"}}}}])
    assert p.admin("/healthz") == (200, '{"status":"ok"}')
    assert p.admin("/readyz")[0] == 200
    for _ in range(3):
        request(p.port, "GET", "/x")
    assert u.requests[-1].header("x-token") == "hunter2"
    status, body = p.admin("/config")
    cfg = json.loads(body)
    assert status == 200 and cfg["version"] == 1 and len(cfg["hash"]) == 64
    assert "hunter2" not in body and "<redacted>" in body
    metrics = p.settled_metrics()
    assert 'portico_upstream_request_duration_seconds_count{upstream="svc"} 3' in metrics
    assert "portico_connections_active" in metrics
    assert "portico_config_reloads_total 0" in metrics
    assert p.admin("/nope")[0] == 404


def test_validate_reports_every_error_with_location(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""version: 1
listeners:
  - { name: main, listen: "127.0.0.1:8080" }
upstreams:
  - name: users
    targets: [ { address: "127.0.0.1:9001", wieght: 2 } ]
    balance: fastest
routes:
  - name: r1
    match: { path_prefix: users }
    upstream: orders
    plugins: [ { name: no-such-plugin } ]
  - name: r2
    match: { path_regex: "(" }
    upstream: users
    timeout: 5s
server:
  limits: { header_timeout: soon }
  drain_timeout: "${UNSET_VARIABLE_FOR_TEST}"
""")
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    err = r.stderr
    assert f"environment variable UNSET_VARIABLE_FOR_TEST is not set ({bad}:19:18)" in err
    r2 = subprocess.run([PORTICO_BIN, "validate", "-c", str(bad)], capture_output=True, text=True,
                        env={"UNSET_VARIABLE_FOR_TEST": "1s"})
    err = r2.stderr
    expected = [
        f'upstreams[0].targets[0].wieght: unknown key "wieght" ({bad}:6:45)',
        f'upstreams[0].balance: unknown balance "fastest"',
        f'routes[0].match.path_prefix: must start with / ({bad}:10:27)',
        f'routes[0].upstream: unknown upstream "orders" ({bad}:11:15)',
        f'routes[1].timeout: unknown key "timeout" ({bad}:16:5)',
        f'server.limits.header_timeout: invalid duration "soon"',
    ]
    for e in expected:
        assert e in err, err
    assert r2.returncode == 1


def test_validate_accepts_good_config_and_json(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(base_config(8080, 9901, {"svc": ["127.0.0.1:9001"]},
                                           [{"name": "a", "match": {"path": "/"}, "upstream": "svc"}])))
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and "config ok: 1 routes" in r.stdout
    v = subprocess.run([PORTICO_BIN, "version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("portico ")


def test_quickstart_config_is_valid(tmp_path):
    # Its database elsewhere: `make run` leaves one in build/, which the file then seeds no more.
    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    text = (repo / "examples" / "quickstart.yaml").read_text()
    assert "path: build/quickstart.db" in text
    config = tmp_path / "quickstart.yaml"
    config.write_text(text.replace("path: build/quickstart.db", f"path: {tmp_path}/none.db"))
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(config)], capture_output=True,
                       text=True, cwd=str(repo))
    assert r.returncode == 0, r.stderr
