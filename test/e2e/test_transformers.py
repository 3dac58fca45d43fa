"""request-transformer and response-transformer with the real binary, over HTTP/1.1 and HTTP/2:
every JSON op, headers, status, query, path and method edits, conditions, the buffer limit,
non-JSON bodies (passed and counted, or refused when strict)."""
import json

import pytest

import conftest

from conftest import request
from json_service import JsonService


@pytest.fixture
def svc():
    s = JsonService("svc")
    yield s
    s.stop()


def curl(port, path, http2=False, method="GET", headers=(), data=None):
    return conftest.curl(port, path, http2, method, headers, data)

RESPONSE_OPS = [
    {"op": "remove", "path": "/svc/headers"},
    {"op": "rename", "from": "/svc/path", "to": "/svc/where"},
    {"op": "set", "path": "/source", "value": "portico"},
    {"op": "set", "path": "/tenant", "value": "{request.header.x-tenant}"},
    {"op": "copy", "from": "/svc/where", "to": "/ref"},
    {"op": "move", "from": "/svc/query", "to": "/q"},
    {"op": "default", "path": "/tags", "value": []},
    {"op": "default", "path": "/source", "value": "never"},
]


@pytest.mark.parametrize("http2", [False, True])
def test_response_ops_headers_and_status(portico, svc, http2):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "t", "match": {"path_prefix": "/t"}, "upstream": "s", "plugins": [
            {"name": "response-transformer", "config": {
                "status": {"404": 200},
                "headers": {"add": {"X-A": "1"}, "set": {"Cache-Control": "no-store"},
                            "remove": ["X-Drop"], "rename": {"Content-Type": "X-Was-Type"}},
                "json": RESPONSE_OPS}}]}])
    status, h, body = curl(p.port, "/t/x?a=1&status=404", http2=http2, headers=["X-Tenant: acme"])
    assert status == 200  # mapped
    assert h["x-a"] == "1" and h["cache-control"] == "no-store"
    assert h["x-was-type"] == "application/json" and "content-type" not in h
    doc = json.loads(body)
    assert doc == {"svc": {"body": None, "where": "/t/x"}, "source": "portico", "tenant": "acme",
                   "ref": "/t/x", "q": {"a": "1", "status": "404"}, "tags": []}
    assert int(h["content-length"]) == len(body) if "content-length" in h else True
    # A header's obs-text bytes (Latin-1, valid HTTP) written into JSON become U+FFFD; before,
    # the JSON library threw and the client got a 502 naming its exception.
    if not http2:
        status, _, body = request(p.port, "GET", "/t/x", headers={"X-Tenant": "caf\xe9"})
        assert status == 200, body
        assert json.loads(body)["tenant"] == "caf\ufffd"


@pytest.mark.parametrize("http2", [False, True])
def test_allow_keeps_only_listed_fields_with_wildcards(portico, svc, http2):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "t", "match": {"path_prefix": "/items"}, "upstream": "s", "plugins": [
            {"name": "response-transformer", "config": {"json": [
                {"op": "set", "path": "/items/*/cost", "value": 3},
                {"op": "rename", "from": "/items/*/sku", "to": "/items/*/id"},
                {"op": "allow", "paths": ["/items/*/id", "/count"]}]}}]}])
    status, _, body = curl(p.port, "/items/3", http2=http2)
    assert status == 200
    assert json.loads(body) == {"items": [{"id": "s0"}, {"id": "s1"}, {"id": "s2"}]}


def test_when_conditions_and_non_json_bodies(portico, svc):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "only201", "match": {"path_prefix": "/c"}, "upstream": "s", "plugins": [
            {"name": "response-transformer", "config": {
                "when": {"status": [201], "content_type": "application/json"},
                "headers": {"set": {"X-Hit": "yes"}}}}]},
        {"name": "text", "match": {"path": "/text"}, "upstream": "s", "plugins": [
            {"name": "response-transformer", "config": {"json": [
                {"op": "remove", "path": "/x"}]}}]},
        {"name": "strict", "match": {"path": "/badjson"}, "upstream": "s", "plugins": [
            {"name": "response-transformer", "config": {"strict": True, "json": [
                {"op": "remove", "path": "/x"}]}}]}])
    assert "x-hit" not in request(p.port, "GET", "/c")[1]
    assert request(p.port, "GET", "/c?status=201")[1]["x-hit"] == "yes"
    status, _, body = request(p.port, "GET", "/text")
    assert status == 200 and body == b"plain words"  # passed unchanged
    assert p.metric("portico_filter_events_total",
                    'filter="response-transformer",event="not_json"') == 1
    status, _, body = request(p.port, "GET", "/badjson")
    assert status == 502 and json.loads(body)["request_id"]


def test_response_over_max_buffer_is_502_never_truncated(portico, upstreams):
    u = upstreams()  # /bytes/N answers N bytes
    p = portico(upstreams={"u": [u.address]}, routes=[
        {"name": "big", "match": {"path_prefix": "/bytes"}, "upstream": "u", "plugins": [
            {"name": "response-transformer", "config": {
                "strict": True, "max_buffer": "1MiB", "json": [{"op": "remove", "path": "/x"}]}}]}])
    status, _, body = request(p.port, "GET", f"/bytes/{10 * 1024 * 1024}", timeout=30)
    assert status == 502
    assert "too large" in json.loads(body)["error"]


@pytest.mark.parametrize("http2", [False, True])
def test_request_ops_path_method_query_headers_body(portico, svc, http2):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "t", "match": {"path": "/api/{id}"}, "upstream": "s", "plugins": [
            {"name": "request-transformer", "config": {
                "method": "PUT",
                "path": "/v2/things/{request.path.id}",
                "query": {"add": {"from": "gw"}, "set": {"lang": "{request.header.x-lang}"},
                          "remove": ["debug"], "rename": {"old": "new"}},
                "headers": {"set": {"X-Caller": "portico"}, "remove": ["X-Secret"],
                            "rename": {"X-Old": "X-New"}},
                "json": [{"op": "rename", "from": "/nm", "to": "/name"},
                         {"op": "remove", "path": "/internal"},
                         {"op": "set", "path": "/meta/id", "value": "{request.path.id}"}]}}]}])
    status, _, body = curl(p.port, "/api/7?debug=1&old=x&lang=en", http2=http2, method="POST",
                           headers=["Content-Type: application/json", "X-Lang: fr",
                                    "X-Secret: s", "X-Old: o"],
                           data=json.dumps({"nm": "n", "internal": 1}).encode())
    assert status == 200, body
    got = svc.requests[-1]
    assert got["method"] == "PUT" and got["path"] == "/v2/things/7"
    assert got["query"] == {"new": "x", "lang": "fr", "from": "gw"}
    assert got["headers"]["x-caller"] == "portico" and "x-secret" not in got["headers"]
    assert got["headers"]["x-new"] == "o" and "x-old" not in got["headers"]
    assert json.loads(got["body"]) == {"name": "n", "meta": {"id": "7"}}
    assert int(got["headers"]["content-length"]) == len(got["body"])


def test_request_path_values_are_encoded_and_never_climb(portico, svc):
    # A value goes into the path percent-encoded, as one segment: a header's space, `?`, `#`
    # or `/` stays inside it (raw, `a?admin=1` moved into the query and `../admin` climbed to
    # another endpoint). A path parameter arrives as the client encoded it. A value that is all
    # dots would still be a segment that climbs: 400, and nothing goes upstream.
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "t", "match": {"path": "/w/{id}"}, "upstream": "s", "plugins": [
            {"name": "request-transformer", "config": {
                "path": "/v2/{request.path.id}/{request.header.x-where}"}}]}])
    for where, sent in [("a b", "a%20b"), ("a?admin=1", "a%3Fadmin%3D1"), ("a#b", "a%23b"),
                        ("../../admin", "..%2F..%2Fadmin"), ("...", "...")]:
        status, _, body = request(p.port, "GET", "/w/j%C3%B6rg%20k", {"X-Where": where})
        assert status == 200, (where, body)
        assert svc.requests[-1]["path"] == "/v2/j%C3%B6rg%20k/" + sent
        assert svc.requests[-1]["query"] == {}
    sent = len(svc.requests)
    for where in ["..", "."]:
        status, _, body = request(p.port, "GET", "/w/x", {"X-Where": where})
        assert status == 400, (where, body)
        assert "the path cannot hold" in json.loads(body)["error"]
    # An escaped dot in the client's path is a dot before routing: /w/%2E%2E is /, no route.
    assert request(p.port, "GET", "/w/%2E%2E", {"X-Where": "x"})[0] == 404
    assert len(svc.requests) == sent


def test_strict_request_body_must_be_json(portico, svc):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "t", "match": {"path": "/in"}, "upstream": "s", "plugins": [
            {"name": "request-transformer", "config": {
                "strict": True, "json": [{"op": "remove", "path": "/x"}]}}]}])
    assert request(p.port, "POST", "/in", {"Content-Type": "text/plain"}, b"hi")[0] == 415
    assert request(p.port, "POST", "/in", {"Content-Type": "application/json"}, b"{no")[0] == 400
    assert not svc.requests


def test_transformer_config_errors(tmp_path):
    from test_composition import validate
    out = validate(tmp_path, """version: 1
listeners: [ { name: m, listen: "127.0.0.1:1" } ]
upstreams: [ { name: s, targets: [ "127.0.0.1:9" ] } ]
routes:
  - name: r
    match: { path: /r }
    upstream: s
    plugins:
      - name: response-transformer
        config:
          json:
            - { op: explode, path: /a }
            - { op: remove, path: "a" }
            - { op: set, path: /b, value: "{user.body}" }
            - { op: move, from: /items/*/a, to: /other/b }
  - name: p1
    match: { path: /p1 }
    upstream: s
    plugins: [ { name: request-transformer, config: { path: "v2/{request.path.id}" } } ]
  - name: p2
    match: { path: /p2 }
    upstream: s
    plugins: [ { name: request-transformer, config: { path: "/v2/{request.path.id}?x=1" } } ]
  - name: p3
    match: { path: /p3 }
    upstream: s
    plugins: [ { name: request-transformer, config: { path: "/v2/../{request.path.id}" } } ]
""")
    for expected in ['unknown op "explode"', "must be a JSON Pointer",
                     "only request.* and consumer.*", "must keep from's path"]:
        assert expected in out, out
    assert out.count("must give a path: start with /") == 3, out
