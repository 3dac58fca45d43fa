"""The dashboard: its JSON API (/api/stats) against known traffic, and the page itself in
headless Chromium driven by Playwright (test/dashboard/check.mjs), with a screenshot."""
import copy
import json
import shutil
import subprocess
from pathlib import Path

from conftest import REPO, SLOW, base_config, free_port, request, wait_for

SCREENSHOT = REPO / "build/test-output/dashboard.png"


def stats(p):
    status, body = p.admin("/api/stats")
    assert status == 200, body
    return json.loads(body)


def dead_port():
    return free_port()  # nothing listens there: connections are refused, answered 502


def config_with_two_routes(u):
    return base_config(free_port(), free_port(),
                       {"svc": [u.address], "gone": [f"127.0.0.1:{dead_port()}"]},
                       [{"name": "orders", "match": {"path_prefix": "/orders"}, "upstream": "svc"},
                        {"name": "down", "match": {"path_prefix": "/down"}, "upstream": "gone"}])


def test_api_stats_reports_traffic_errors_history_and_reloads(portico, upstreams):
    cfg = config_with_two_routes(upstreams())
    p = portico(config=cfg)
    for _ in range(30):
        assert request(p.port, "GET", "/orders/1")[0] == 200
    for _ in range(4):
        assert request(p.port, "GET", "/down/x")[0] == 502
    assert request(p.port, "GET", "/nowhere")[0] == 404

    # Two samples 2 s apart are needed before a point shows the traffic.
    wait_for(lambda: any(v for v in stats(p)["overall"]["history"]["per_second"]),
             timeout=10, interval=0.5, what="a history point with traffic")
    s = stats(p)
    routes = {r["name"]: r for r in s["routes"]}
    assert [r["name"] for r in s["routes"]] == ["orders", "down"]
    assert routes["orders"]["requests"] == 30 and routes["orders"]["status"]["2xx"] == 30
    assert routes["down"]["status"]["5xx"] == 4
    assert routes["orders"]["upstream"] == "svc" and routes["orders"]["match"] == "/orders*"
    assert s["overall"]["requests"] == 34 and s["overall"]["errors"] == 4
    # Every series is as long as the sample times; rates and ratios match what was sent.
    n = len(s["times"])
    assert n >= 1
    for r in s["upstreams"] + [s["overall"]]:
        assert all(len(v) == n for v in r["history"].values()), r["name"]
    # Routes carry their last minute of rate (a sparkline); the whole history is per route.
    for r in s["routes"]:
        assert list(r["history"]) == ["per_second"] and len(r["history"]["per_second"]) <= 30
    detail = {name: json.loads(p.admin(f"/api/stats/routes/{name}")[1]) for name in routes}
    assert detail["orders"]["times"] == s["times"][:len(detail["orders"]["times"])]
    h = detail["orders"]["history"]
    assert abs(sum(h["per_second"]) * s["interval_ms"] / 1000 - 30) < 0.5
    down = detail["down"]["history"]
    point = max(range(len(down["per_second"])), key=lambda i: down["per_second"][i])
    assert down["error_ratio"][point] == 1
    busiest = max(range(len(h["per_second"])), key=lambda i: h["per_second"][i])
    assert 0 < h["p50_ms"][busiest] <= h["p95_ms"][busiest] <= h["p99_ms"][busiest]
    assert p.admin("/api/stats/routes/nope")[0] == 404
    assert p.admin("/api/stats/routes/%6Frders")[0] == 200  # percent-decoded

    ups = {u["name"]: u for u in s["upstreams"]}
    assert ups["svc"]["attempts"] == 30 and ups["svc"]["targets"][0]["healthy"] is True
    assert ups["gone"]["failures"] >= 4 and ups["gone"]["circuit"] == "off"

    errors = s["errors"]
    assert [e["status"] for e in errors[:5]].count(502) == 4
    unrouted = [e for e in errors if e["status"] == 404]
    assert unrouted and unrouted[0]["path"] == "/nowhere" and unrouted[0]["route"] == ""
    assert all(len(e["request_id"]) == 32 for e in errors)
    assert s["process"]["workers"] == 2 and s["process"]["resident_bytes"] > 0

    # Reloads: one accepted (a route added), one refused; the history shows both.
    assert s["config"]["version"] == 1 and len(s["config"]["reloads"]) == 1
    grown = copy.deepcopy(cfg)
    grown["routes"].append({"name": "extra", "match": {"path": "/extra"}, "upstream": "svc"})
    p.reload(grown)
    broken = copy.deepcopy(grown)
    broken["routes"][0]["upstream"] = "missing"
    p.reload(broken)
    s = stats(p)
    assert s["config"]["version"] == 2
    assert [r["name"] for r in s["routes"]] == ["orders", "down", "extra"]
    assert [e["ok"] for e in s["config"]["reloads"]] == [True, True, False]
    assert "missing" in s["config"]["reloads"][-1]["error"]


def test_dashboard_assets_and_switch(portico, upstreams):
    cfg = config_with_two_routes(upstreams())
    p = portico(config=cfg)
    status, page = p.admin("/dashboard/")
    assert status == 200 and "<title>Portico dashboard</title>" in page
    assert p.admin("/dashboard/app.js")[0] == 200
    assert p.admin("/dashboard/nothing.js")[0] == 404
    off = copy.deepcopy(cfg)
    off["server"]["admin"]["dashboard"] = False
    p.reload(off)
    assert p.admin("/dashboard/")[0] == 404 and p.admin("/api/stats")[0] == 404
    assert p.admin("/metrics")[0] == 200


def test_dashboard_page_in_headless_chromium(portico, upstreams):
    assert shutil.which("node") and Path("/usr/bin/chromium").exists(), \
        "make test installs chromium (scripts/install-deps.sh) and playwright-core (npm ci)"
    cfg = config_with_two_routes(upstreams())
    p = portico(config=cfg)
    for _ in range(5):
        request(p.port, "GET", "/down/1")  # recent errors and a 5xx ratio to show
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    opts = {"admin": f"http://127.0.0.1:{p.admin_port}", "proxy": f"http://127.0.0.1:{p.port}",
            "route": "orders", "path": "/orders/7", "requests": 25, "screenshot": str(SCREENSHOT)}
    run = subprocess.run(["node", "check.mjs", json.dumps(opts)], cwd=REPO / "test/dashboard",
                         capture_output=True, text=True, timeout=120 if SLOW else 60)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"dashboard screenshot: {SCREENSHOT}")
    assert result["problems"] == []  # no console error, failed request or error response
    assert result["routes"] == ["orders", "down"]
    assert result["upstreams"] == ["svc", "gone"]
    assert result["before"] == 0 and result["after"] == 25
    assert result["cards"]["configVersion"] == "1"
    assert any("502" in row and "/down/1" in row for row in result["errorRows"])
    assert "selected" in result["selectedRow"]  # clicked: its whole history charted
    assert SCREENSHOT.stat().st_size > 20_000
