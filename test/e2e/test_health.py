"""Upstream health: active checks, passive ejection (outlier detection), the circuit breaker
and its thresholds, as `/upstreams` and `/metrics` show them."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import base_config, free_port, refused_port, request, validate, wait_for


def served_by(u):
    return [r for r in u.requests if not r.target.startswith("/health")]


def gateway(portico, targets, workers=2, **upstream):
    cfg = base_config(free_port(), free_port(),
                      {"svc": {"targets": [t.address for t in targets], **upstream}},
                      [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                      server={"workers": workers})
    return portico(config=cfg)


def target_state(p, address):
    doc = json.loads(p.admin("/upstreams")[1])
    for t in doc["upstreams"][0]["targets"]:
        if t["address"] == address:
            return t
    raise AssertionError(doc)


def test_active_health_check_removes_and_restores_a_target(portico, upstreams):
    u1, u2 = upstreams("one"), upstreams("two")
    p = gateway(portico, [u1, u2], retries={"attempts": 1},
                health_check={"path": "/health", "interval": "100ms", "timeout": "500ms",
                              "unhealthy_threshold": 2, "healthy_threshold": 2})
    for _ in range(10):
        assert request(p.port, "GET", "/a")[0] == 200
    assert served_by(u1) and served_by(u2)

    u2.health_status = 503
    t0 = time.monotonic()
    wait_for(lambda: not target_state(p, u2.address)["healthy"], timeout=5,
             what="target two unhealthy")
    assert time.monotonic() - t0 < 1.5  # two failed probes, 100 ms apart
    assert target_state(p, u2.address)["active_check"] == "unhealthy"
    assert 'portico_upstream_target_healthy{upstream="svc",target="%s"} 0' % u2.address \
        in p.metrics()
    before = len(served_by(u2))
    for _ in range(20):
        r = request(p.port, "GET", "/b")
        assert r[0] == 200, (r, p.admin("/upstreams"))
    assert len(served_by(u2)) == before  # no traffic while unhealthy

    u2.health_status = 200
    wait_for(lambda: target_state(p, u2.address)["healthy"], timeout=5, what="target two back")
    for _ in range(10):
        assert request(p.port, "GET", "/c")[0] == 200
    assert any(r.target == "/c" for r in served_by(u2))


def test_all_targets_unhealthy_answers_503_fast(portico, upstreams):
    u = upstreams()
    u.health_status = 500
    p = gateway(portico, [u], health_check={"path": "/health", "interval": "100ms",
                                            "unhealthy_threshold": 1})
    wait_for(lambda: not target_state(p, u.address)["healthy"], timeout=5, what="unhealthy")
    status, _, body = request(p.port, "GET", "/x")
    assert status == 503 and b"no healthy upstream target" in body
    assert served_by(u) == []


def test_passive_ejection_grows_and_ends(portico, upstreams):
    u1, u2 = upstreams("one"), upstreams("two")
    u2.forced_status = 500
    # One worker: its round robin alternates the two targets exactly.
    p = gateway(portico, [u1, u2], workers=1, retries={"attempts": 1},
                outlier_detection={"consecutive_failures": 3, "base_ejection": "1s",
                                   "max_ejection": "10s"})
    codes = [request(p.port, "GET", "/x")[0] for _ in range(6)]
    assert codes.count(500) == 3  # round robin: the third failure on two ejects it
    # (An attempt's outcome is recorded as its exchange ends, a moment after the response.)
    wait_for(lambda: target_state(p, u2.address)["healthy"] is False, timeout=2, what="ejected")
    assert p.metric("portico_upstream_ejections_total", 'upstream="svc"') == 1
    hits = len(served_by(u2))
    assert all(request(p.port, "GET", "/y")[0] == 200 for _ in range(10))
    assert len(served_by(u2)) == hits
    ejected_for = target_state(p, u2.address)["ejected_for_ms"]
    assert 0 < ejected_for <= 1000
    # Back after the ejection; still failing, so ejected again, for twice as long.
    wait_for(lambda: target_state(p, u2.address)["healthy"], timeout=3, what="ejection over")
    codes = [request(p.port, "GET", "/z")[0] for _ in range(6)]
    assert codes.count(500) == 3
    wait_for(lambda: not target_state(p, u2.address)["healthy"], timeout=2, what="ejected again")
    assert 1000 < target_state(p, u2.address)["ejected_for_ms"] <= 2000


def test_circuit_breaker_opens_half_opens_and_closes(portico, upstreams):
    u = upstreams()
    u.forced_status = 502
    p = gateway(portico, [u], retries={"attempts": 1},
                circuit_breaker={"failure_threshold": 3, "open_duration": "700ms"})
    assert [request(p.port, "GET", "/")[0] for _ in range(3)] == [502, 502, 502]
    # The attempt's outcome is recorded as its exchange ends, a moment after the client has
    # the response.
    wait_for(lambda: json.loads(p.admin("/upstreams")[1])["upstreams"][0]["circuit"] == "open",
             timeout=2, what="the circuit open")
    t0 = time.monotonic()
    status, _, body = request(p.port, "GET", "/")
    assert status == 503 and b"upstream circuit open" in body
    assert time.monotonic() - t0 < 0.2
    assert len(u.requests) == 3  # open: the upstream was not touched
    assert 'portico_upstream_circuit_state{upstream="svc"} 1' in p.metrics()
    # A failed half-open probe opening it again is a unit test on the injected clock
    # (test/proxy/upstream_calls_test.cc); here the real binary closes it after its time.
    time.sleep(0.8)
    u.forced_status = None
    assert request(p.port, "GET", "/")[0] == 200  # half-open: the probe succeeds: closed
    wait_for(lambda: json.loads(p.admin("/upstreams")[1])["upstreams"][0]["circuit"] == "closed",
             timeout=2, what="the circuit closed")
    assert all(request(p.port, "GET", "/")[0] == 200 for _ in range(5))
    assert p.metric("portico_upstream_circuit_opened_total", 'upstream="svc"') == 1


def test_circuit_breaker_max_requests(portico, upstreams):
    u = upstreams()
    p = gateway(portico, [u], circuit_breaker={"max_requests": 2})
    with ThreadPoolExecutor(5) as pool:
        codes = sorted(pool.map(lambda _: request(p.port, "GET", "/sleep/500")[0], range(5)))
    assert codes == [200, 200, 503, 503, 503]
    assert p.metric("portico_upstream_overload_rejections_total", 'upstream="svc"') == 3
    assert request(p.port, "GET", "/")[0] == 200


def test_health_config_errors(tmp_path, upstreams):
    u = upstreams()
    for extra, message in [({"health_check": {"path": "health"}}, "must start with /"),
                           ({"outlier_detection": {"base_ejection": "10s", "max_ejection": "1s"}},
                            "at least base_ejection"),
                           ({"circuit_breaker": {"max_request": 3}}, "max_request")]:
        cfg = base_config(free_port(), free_port(), {"svc": {"targets": [u.address], **extra}},
                          [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}])
        code, out = validate(cfg, tmp_path)
        assert code != 0 and message in out, (extra, out)


def test_retry_budget_caps_retries(portico, upstreams):
    u = upstreams()
    dead = f"127.0.0.1:{refused_port()}"  # nothing listens: connect refused

    def run(budget):
        cfg = base_config(free_port(), free_port(), {"svc": {
            "targets": [dead, u.address], "retries": {"attempts": 2, "backoff_base": "1ms"},
            **({"retry_budget": budget} if budget else {})}},
            [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}],
            server={"workers": 1})
        p = portico(config=cfg)
        codes = [request(p.port, "GET", "/")[0] for _ in range(10)]
        rejected = p.metric("portico_upstream_overload_rejections_total", 'upstream="svc"')
        p.stop()
        return codes, rejected

    codes, rejected = run(None)
    assert codes == [200] * 10 and rejected == 0  # every failed first try retried
    codes, rejected = run({"percent": 0, "min_concurrent": 0})
    # No retry allowed: the requests whose first try went to the dead target fail.
    assert codes.count(502) == 5 and codes.count(200) == 5
    assert rejected == 5
    codes, rejected = run({"percent": 0, "min_concurrent": 1})
    assert codes == [200] * 10  # one retry at a time is within the budget
