"""The request-validation filter with the real binary: query parameters, headers and JSON bodies
checked against JSON Schemas (draft 7); failures answered as application/problem+json listing
each one with its pointer, before anything reaches the service."""
import json

import pytest

import conftest

from json_service import JsonService

ORDER = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
        "items": {"type": "array", "minItems": 1,
                  "items": {"type": "object", "required": ["sku"],
                            "properties": {"sku": {"type": "string", "maxLength": 8},
                                           "qty": {"type": "integer", "maximum": 100}}}},
        "note": {"enum": ["gift", "rush"]},
    },
}


@pytest.fixture
def svc():
    s = JsonService("svc")
    yield s
    s.stop()


def curl(port, path, data=None, headers=(), http2=False):
    return conftest.curl(port, path, http2, None, headers, data, "application/json")

def gateway(portico, svc, config):
    return portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "orders", "match": {"path_prefix": "/orders"}, "upstream": "s",
         "plugins": [{"name": "request-validation", "config": config}]}])


@pytest.mark.parametrize("http2", [False, True])
def test_body_every_failure_with_its_pointer(portico, svc, http2):
    p = gateway(portico, svc, {"body_schema": ORDER})
    bad = json.dumps({"id": 0, "email": "nope", "items": [{"sku": "way-too-long", "qty": 500}],
                      "note": "later"}).encode()
    status, h, body = curl(p.port, "/orders", data=bad, http2=http2)
    assert status == 400
    assert h["content-type"] == "application/problem+json"
    doc = json.loads(body)
    assert doc["status"] == 400 and doc["title"] == "Request validation failed"
    assert doc["request_id"] == h["x-request-id"]
    pointers = {e["pointer"] for e in doc["errors"] if e["in"] == "body"}
    assert {"/id", "/email", "/items/0/sku", "/items/0/qty", "/note"} <= pointers
    assert len(svc.requests) == 0  # nothing reached the service
    good = json.dumps({"id": 7, "items": [{"sku": "a1", "qty": 2}]}).encode()
    status, _, body = curl(p.port, "/orders", data=good, http2=http2)
    assert status == 200
    assert json.loads(body)["svc"]["body"] == json.loads(good)  # passed on unchanged
    status, _, body = curl(p.port, "/orders", data=b'{"id": 7,', http2=http2)
    assert status == 400 and "not JSON" in json.loads(body)["errors"][0]["detail"]


def test_query_and_headers_typed_and_required(portico, svc):
    p = gateway(portico, svc, {
        "query": {"page": {"type": "integer", "minimum": 1, "required": True},
                  "q": {"type": "string", "maxLength": 5}},
        "headers": {"X-Tenant": {"type": "string", "pattern": "^[a-z]+$", "required": True}},
        "status": 422})
    status, _, _ = curl(p.port, "/orders?page=2&q=abc", headers=["X-Tenant: acme"])
    assert status == 200
    status, h, body = curl(p.port, "/orders?page=0&q=toolong", headers=["X-Tenant: ACME!"])
    assert status == 422 and h["content-type"] == "application/problem+json"
    errors = json.loads(body)["errors"]
    assert {(e["in"], e["name"]) for e in errors} == {("query", "page"), ("query", "q"),
                                                       ("header", "X-Tenant")}
    status, _, body = curl(p.port, "/orders")
    missing = {(e["in"], e["name"], e["detail"]) for e in json.loads(body)["errors"]}
    assert ("query", "page", "is required") in missing and ("header", "X-Tenant", "is required") in missing
    status, _, body = curl(p.port, "/orders?page=two", headers=["X-Tenant: acme"])
    assert status == 422  # "two" is not an integer
    assert len(svc.requests) == 1


def test_schema_from_a_file_and_bad_schemas_refused(portico, svc, tmp_path):
    from conftest import base_config, free_port, validate
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER))
    p = gateway(portico, svc, {"body_schema": str(path)})
    status, _, _ = curl(p.port, "/orders", data=b'{"id": 1, "items": [{"sku": "x"}]}')
    assert status == 200
    status, _, _ = curl(p.port, "/orders", data=b'{"id": 1}')
    assert status == 400
    cfg = base_config(free_port(), free_port(), {"s": ["127.0.0.1:1"]}, [
        {"name": "r", "match": {"path_prefix": "/"}, "upstream": "s", "plugins": [
            {"name": "request-validation", "config": {
                "body_schema": {"type": 5}, "query": {"n": "not a schema"}}}]}])
    code, out = validate(cfg, tmp_path)
    assert code != 0 and "body_schema" in out and "query.n" in out
