"""Plans at the gateway (issue 18, ADR 0015): on the routes of an API a plan lists, a caller
needs the key of an application (consumer) with an active subscription to the API; the plan's
limits apply per application; pending and rejected subscriptions get 403 with a clear JSON
error; an operator approves through the Admin API."""
import hashlib
import json

from conftest import base_config, free_port, request, validate
from redis_server import RedisServer
from test_admin_api import admin_config, call

KEY1, KEY2, KEY3 = "app1-key-0123456789", "app2-key-0123456789", "app3-key-0123456789"


def digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def test_subscriptions_and_plan_limits_at_the_gateway(portico, upstreams, tmp_path):
    u = upstreams()
    cfg = admin_config(tmp_path, u.address)
    cfg["upstreams"].append({"name": "items-svc", "targets": [u.address]})
    cfg["apis"] = [{"name": "items", "base_path": "/items"}]
    cfg["routes"].append({"name": "items", "match": {"path_prefix": "/items"}, "api": "items",
                          "upstream": "items-svc"})
    # An application's plans are its groups: an acl may open a route to a plan's members.
    cfg["routes"].append({"name": "free-only", "match": {"path": "/free-only"},
                          "upstream": "items-svc", "plugins": [
                              {"name": "key-auth"}, {"name": "acl", "config": {"allow": ["free"]}}]})
    cfg["consumers"] = [
        {"name": "app1", "credentials": {"key-auth": [{"key_sha256": digest(KEY1)}]}},
        {"name": "app2", "credentials": {"key-auth": [{"key_sha256": digest(KEY2)}]}},
        {"name": "app3", "credentials": {"key-auth": [{"key_sha256": digest(KEY3)}]}}]
    cfg["plans"] = [{"name": "free", "apis": ["items"], "limits": [{"requests": 3, "per": "1m"}],
                     "quota": {"requests": 1000, "per": "day"}},
                    {"name": "gold", "apis": ["items"], "approval": "manual"}]
    cfg["subscriptions"] = [
        {"name": "s1", "application": "app1", "api": "items", "plan": "free"},
        {"name": "s2", "application": "app2", "api": "items", "plan": "gold", "state": "pending"}]
    p = portico(config=cfg)

    def get(key=None):
        status, headers, body = request(p.port, "GET", "/items/1",
                                        {"apikey": key} if key else {})
        return status, headers, json.loads(body) if status >= 400 else body

    assert get()[0] == 401  # key-auth, put there by the plan
    s, _, body = get(KEY3)
    assert s == 403 and body["error"] == "application app3 has no subscription to api items", body
    assert body["request_id"]
    s, _, body = get(KEY2)
    assert s == 403 and "awaits approval" in body["error"], body
    assert request(p.port, "GET", "/free-only", {"apikey": KEY1})[0] == 200
    assert request(p.port, "GET", "/free-only", {"apikey": KEY2})[0] == 403  # gold, pending
    # The plan's limit, per application: 3 a minute, then 429 with the rate-limit headers.
    answers = [get(KEY1) for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 200, 429], answers
    assert answers[0][1]["x-quota-remaining"] == "999"
    assert answers[0][1]["ratelimit-limit"] == "3" and answers[0][1]["ratelimit-remaining"] == "2"
    # The operator approves the pending subscription: its application gets through.
    s, _, body = call(p, "PATCH", "/subscriptions/s2", {"state": "active"},
                      content_type="application/merge-patch+json")
    assert s == 200, body
    assert get(KEY2)[0] == 200
    s, _, body = call(p, "PATCH", "/subscriptions/s2", {"state": "rejected"},
                      content_type="application/merge-patch+json")
    assert s == 200 and "was rejected" in get(KEY2)[2]["error"]
    # References hold: a subscription names a plan that lists its API and a real application.
    s, _, body = call(p, "POST", "/subscriptions", {"name": "s3", "application": "app3",
                                                    "api": "items", "plan": "nope"})
    assert s == 400 and body["errors"][0]["message"] == 'unknown plan "nope"', body
    s, _, body = call(p, "DELETE", "/plans/free")
    assert s == 409 and body["referrers"] == ["subscriptions/s1"], body
    s, _, body = call(p, "DELETE", "/consumers/app1")
    assert s == 409 and body["referrers"] == ["subscriptions/s1"], body
    # Routes outside the plans' APIs are untouched.
    assert request(p.port, "GET", "/seed")[0] == 200


def test_plan_counters_in_redis_are_shared_by_nodes(portico, upstreams, tmp_path):
    """A plan with `backend: redis` counts its limits and quota in Redis: two nodes sharing it
    admit the plan's limit once between them, and the quota continues on the other node."""
    u = upstreams()
    r = RedisServer(tmp_path / "redis", free_port())
    try:
        nodes = []
        for _ in range(2):
            cfg = base_config(free_port(), free_port(), {"items-svc": [u.address]},
                              [{"name": "items", "match": {"path_prefix": "/items"},
                                "api": "items", "upstream": "items-svc"}])
            cfg["apis"] = [{"name": "items", "base_path": "/items"}]
            cfg["consumers"] = [{"name": "app1", "credentials": {
                "key-auth": [{"key_sha256": digest(KEY1)}]}}]
            cfg["plans"] = [{"name": "free", "apis": ["items"],
                             "limits": [{"requests": 4, "per": "1m"}],
                             "quota": {"requests": 100, "per": "day"},
                             "backend": "redis", "redis": {"address": r.address},
                             "on_backend_failure": "fail_closed"}]
            cfg["subscriptions"] = [{"name": "s1", "application": "app1", "api": "items",
                                     "plan": "free"}]
            nodes.append(portico(config=cfg))
        answers = [request(nodes[i % 2].port, "GET", "/items/1", {"apikey": KEY1})
                   for i in range(6)]
        assert [a[0] for a in answers] == [200, 200, 200, 200, 429, 429], answers
        # The quota went on counting across the nodes: 4 admitted, 96 left on either.
        assert answers[3][1]["x-quota-remaining"] == "96", answers[3][1]
        assert r.command("KEYS", "portico:quota:plan:free:items*") == b"*1"
    finally:
        r.stop()
    # Redis gone and fail_closed: the plan's counters cannot be read, so no request passes.
    assert request(nodes[0].port, "GET", "/items/1", {"apikey": KEY1})[0] == 503


def test_plan_counter_settings_are_checked(tmp_path):
    cfg = base_config(free_port(), free_port(), {}, [])
    cfg["apis"] = [{"name": "items", "base_path": "/items"}]
    cfg["plans"] = [{"name": "free", "apis": ["items"], "limits": [{"requests": 4, "per": "1m"}],
                     "backend": "memcached"}]
    code, out = validate(cfg, tmp_path)
    assert code != 0 and "plans[0].backend" in out, out
