"""The built-in filters: headers, static-response, request-id, access-log."""
import json
import os
import signal
import time

from conftest import request, wait_for


def test_headers_filter_edits_request_and_response(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                         "plugins": [{"name": "headers", "config": {
                             "request": {"set": {"X-Env": "prod"}, "add": {"X-Tag": "b"},
                                         "remove": ["X-Drop"]},
                             "response": {"set": {"X-Upstream": "hidden"},
                                          "add": {"X-Served-By": "portico"}}}}]}])
    s, hdrs, _ = request(p.port, "GET", "/", headers={"X-Env": "dev", "X-Tag": "a", "X-Drop": "1"})
    assert s == 200
    sent = u.requests[-1]
    assert sent.all("x-env") == ["prod"]
    assert sent.all("x-tag") == ["a", "b"]
    assert sent.header("x-drop") is None
    assert hdrs["x-upstream"] == "hidden" and hdrs["x-served-by"] == "portico"


def test_static_response_answers_without_upstream(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "maint", "match": {"path_prefix": "/"},
                         "plugins": [{"name": "static-response", "config": {
                             "status": 503, "headers": {"Retry-After": "120",
                                                        "Content-Type": "application/json"},
                             "body": '{"maintenance":true}'}}]}])
    s, hdrs, body = request(p.port, "GET", "/anything")
    assert s == 503 and hdrs["retry-after"] == "120"
    assert json.loads(body) == {"maintenance": True}
    assert len(hdrs["x-request-id"]) == 32
    s, hdrs, body = request(p.port, "HEAD", "/anything")
    assert s == 503 and body == b""
    assert u.requests == []


def test_request_id_filter_custom_header_and_untrusted_ids(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                         "plugins": [{"name": "request-id", "config": {
                             "header": "X-Correlation-Id", "trust_incoming": False}}]}])
    s, hdrs, _ = request(p.port, "GET", "/", headers={"X-Correlation-Id": "client-made"})
    sent = u.requests[-1]
    assert sent.header("x-correlation-id") != "client-made"
    assert sent.header("x-correlation-id") == hdrs["x-correlation-id"]
    assert len(hdrs["x-correlation-id"]) == 32


def test_access_log_file_and_reopen_on_sigusr1(portico, upstreams, tmp_path):
    u = upstreams()
    log = tmp_path / "access.log"
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc"}],
                plugins=[{"name": "access-log", "config": {"path": str(log)}}])
    s, hdrs, _ = request(p.port, "POST", "/orders?x=1", body=b"12345")
    assert request(p.port, "GET", "/missing-route-is-still-routed")[0] == 200
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2, what="2 log lines")
    first = next(line for line in map(json.loads, log.read_text().splitlines())
                 if line["method"] == "POST")
    assert first["request_id"] == hdrs["x-request-id"]
    assert first["method"] == "POST" and first["path"] == "/orders?x=1"
    assert first["route"] == "r" and first["upstream"] == "svc" and first["status"] == 200
    assert first["upstream_target"] == u.address and first["bytes_in"] == 5
    assert first["bytes_out"] > 0 and first["latency_ms"] >= first["upstream_latency_ms"] > 0
    assert first["client"] == "127.0.0.1"

    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    p.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: log.exists(), what="log reopened")
    request(p.port, "GET", "/after")
    wait_for(lambda: len(log.read_text().splitlines()) == 1, what="line in new file")
    assert json.loads(log.read_text())["path"] == "/after"
    assert len(rotated.read_text().splitlines()) == 2


def test_access_log_records_local_errors(portico, upstreams, tmp_path):
    log = tmp_path / "access.log"
    p = portico(upstreams={"svc": {"targets": []}},
                routes=[{"name": "r", "match": {"path": "/x"}, "upstream": "svc"}],
                plugins=[{"name": "access-log", "config": {"path": str(log),
                                                           "fields": ["status", "error", "route"]}}])
    request(p.port, "GET", "/x")
    request(p.port, "GET", "/nope")
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2, what="2 lines")
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    lines.sort(key=lambda line: line["status"])  # one buffer per worker: any order
    assert lines[1] == {"status": 503, "error": "no upstream targets", "route": "r"}
    assert lines[0] == {"status": 404, "error": "no route matched", "route": ""}
