"""APIs and their lifecycle: draft routes are not served, deprecated ones carry Deprecation,
Sunset and Link with their exact formats, retired ones answer 410; state changes through the
Admin API; a route outside its API's base path is a config error."""
import json
import time
import urllib.request
from pathlib import Path

from conftest import base_config, free_port, request, validate
from test_admin_api import READ, admin_config, call


def api_config(u, state, ports=None, **api):
    port, admin_port = ports or (free_port(), free_port())
    cfg = base_config(port, admin_port, {"svc": [u.address]}, [
        {"name": "items", "api": "orders", "match": {"path": "/orders/v2/items"},
         "upstream": "svc"},
        {"name": "other", "match": {"path": "/other"}, "upstream": "svc"}])
    cfg["apis"] = [{"name": "orders", "version": "v2", "base_path": "/orders/v2",
                    "state": state, **api}]
    return cfg


def test_each_state_as_clients_see_it(portico, upstreams):
    u = upstreams()
    p = portico(config=api_config(u, "draft"))
    assert request(p.port, "GET", "/orders/v2/items")[0] == 404
    assert request(p.port, "GET", "/other")[0] == 200

    ports = (p.port, p.admin_port)
    p.reload(api_config(u, "published", ports))
    s, h, _ = request(p.port, "GET", "/orders/v2/items")
    assert s == 200 and "deprecation" not in h and "sunset" not in h

    p.reload(api_config(u, "deprecated", ports, sunset="2027-06-30T00:00:00Z",
                        deprecated_at="2026-12-01T00:00:00Z",
                        docs="https://docs.example.com/orders/v2"))
    s, h, _ = request(p.port, "GET", "/orders/v2/items")
    assert s == 200
    assert h["deprecation"] == "@1796083200"  # 2026-12-01T00:00:00Z
    assert h["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert h["link"] == '<https://docs.example.com/orders/v2>; rel="deprecation"'
    assert "deprecation" not in request(p.port, "GET", "/other")[1]

    p.reload(api_config(u, "retired", ports))
    s, h, body = request(p.port, "GET", "/orders/v2/items")
    assert s == 410 and h["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == 410 and "retired" in doc["error"] and doc["request_id"]
    # The upstream saw /other twice and the API's route only while published or deprecated.
    paths = [r.target for r in u.requests]
    assert paths.count("/orders/v2/items") == 2 and paths.count("/other") == 2


def test_route_outside_base_path_and_unknown_api_are_config_errors(tmp_path, upstreams):
    u = upstreams()
    cfg = api_config(u, "published")
    cfg["routes"][0]["match"]["path"] = "/orders/v3/items"
    cfg["routes"][1]["api"] = "missing"
    code, out = validate(cfg, tmp_path)
    assert code != 0
    assert "routes[0].match: route \"items\" of api \"orders\" must be under its base_path" in out
    assert 'routes[1].api: unknown api "missing"' in out


def test_deprecating_through_the_admin_api_fixes_the_date(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    assert call(p, "POST", "/apis", {"name": "orders", "base_path": "/orders/v2",
                                     "docs": "https://d.example/o"})[0] == 201
    assert call(p, "POST", "/routes", {"name": "items", "api": "orders", "upstream": "seed",
                                       "match": {"path": "/orders/v2/items"}})[0] == 201
    before = int(time.time())
    s, _, body = call(p, "PATCH", "/apis/orders",
                      {"state": "deprecated", "sunset": "2027-06-30T00:00:00Z"},
                      content_type="application/merge-patch+json")
    assert s == 200 and body["deprecated_at"].endswith("Z")
    s, h, _ = request(p.port, "GET", "/orders/v2/items")
    assert s == 200 and h["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    stamp = int(h["deprecation"].lstrip("@"))
    assert before - 1 <= stamp <= int(time.time()) + 1
    # Another change keeps the date.
    call(p, "PATCH", "/apis/orders", {"labels": {"x": "y"}},
         content_type="application/merge-patch+json")
    assert request(p.port, "GET", "/orders/v2/items")[1]["deprecation"] == f"@{stamp}"
    assert call(p, "DELETE", "/apis/orders")[0] == 409  # its route still names it
    call(p, "PATCH", "/apis/orders", {"state": "retired"},
         content_type="application/merge-patch+json")
    assert request(p.port, "GET", "/orders/v2/items")[0] == 410
    assert call(p, "GET", "/apis/orders", token=READ)[2]["state"] == "retired"


def test_an_apis_spec_file_is_served(portico, upstreams):
    u = upstreams()
    spec = Path(__file__).parent / "specs" / "petstore-3.0.yaml"
    p = portico(config=api_config(u, "published", openapi={"file": str(spec)}))
    with urllib.request.urlopen(
            f"http://127.0.0.1:{p.admin_port}/admin/v1/apis/orders/openapi", timeout=5) as r:
        assert r.headers["Content-Type"] == "application/yaml"
        assert r.read().decode() == spec.read_text()
