"""The Admin API (/admin/v1) with `store: sqlite`: CRUD of every kind, validation with JSON
Pointers, preconditions, tokens, redaction, the audit log, declarative apply, persistence across
restarts, a damaged database, and `store: file` (read-only)."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import PORTICO_BIN, Portico, base_config, free_port, request, wait_for

WRITE = "write-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"


def admin_config(tmp_path, upstream_address, with_entities=True, tokens=True):
    cfg = base_config(free_port(), free_port(), {"seed": [upstream_address]},
                      [{"name": "seed", "match": {"path": "/seed"}, "upstream": "seed"}])
    if tokens:
        cfg["server"]["admin"]["tokens"] = [
            {"name": "ci", "token": WRITE, "scope": "write"},
            {"name": "viewer", "token": READ, "scope": "read"}]
    cfg["store"] = {"type": "sqlite", "path": str(tmp_path / "portico.db")}
    if not with_entities:
        del cfg["upstreams"]
        del cfg["routes"]
    return cfg


def call(p, method, path, body=None, token=WRITE, content_type="application/json", headers=None):
    """One Admin API request: (status, headers (lower-case), parsed JSON body or text)."""
    data = body if isinstance(body, (bytes, type(None))) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{p.admin_port}/admin/v1{path}", data=data,
                                 method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, hdrs, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, dict(e.headers), e.read()
    hdrs = {k.lower(): v for k, v in hdrs.items()}
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw.decode()


def test_crud_is_live_on_return_and_validated_like_the_file(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    assert "seeded" in p.logs()
    s, h, body = call(p, "POST", "/upstreams", {"name": "svc", "targets": [u.address]})
    assert s == 201, body
    rev = int(h["x-portico-revision"])
    assert h["etag"] == f'"{rev}"' and body["revision"] == rev and body["created_at"]

    # A bad reference: 400 with a JSON Pointer, and nothing changes.
    s, _, body = call(p, "POST", "/routes",
                      {"name": "orders", "match": {"path": "/orders"}, "upstream": "nope"})
    assert s == 400
    assert body["errors"] == [{"path": "/routes/1/upstream",
                               "message": 'unknown upstream "nope"'}]
    assert call(p, "GET", "/revision")[2]["revision"] == rev

    # Created: served by every worker as soon as the answer is back (fresh connections land on
    # either worker).
    s, h, body = call(p, "POST", "/routes",
                      {"name": "orders", "match": {"path": "/orders"}, "upstream": "svc",
                       "labels": {"team": "a"}})
    assert s == 201, body
    for _ in range(20):
        assert request(p.port, "GET", "/orders")[0] == 200
    assert call(p, "POST", "/routes", {"name": "orders", "match": {"path": "/x"},
                                       "upstream": "svc"})[0] == 409

    # GET one and list, with label filter and pagination.
    s, h, one = call(p, "GET", "/routes/orders", token=READ)
    assert s == 200 and h["etag"] == f'"{one["revision"]}"'
    assert call(p, "GET", "/routes?label=team=a", token=READ)[2]["data"][0]["name"] == "orders"
    assert call(p, "GET", "/routes?label=team=b", token=READ)[2]["data"] == []
    page = call(p, "GET", "/routes?limit=1", token=READ)[2]
    assert len(page["data"]) == 1 and page["next"] == "seed"
    rest = call(p, "GET", "/routes?limit=1&after=seed", token=READ)[2]
    assert [r["name"] for r in rest["data"]] == ["orders"] and rest["next"] is None

    # PATCH (merge patch) with If-Match; a stale one is 412.
    etag = f'"{one["revision"]}"'
    s, h, body = call(p, "PATCH", "/routes/orders", {"match": {"path": "/orders2"}},
                      content_type="application/merge-patch+json", headers={"If-Match": etag})
    assert s == 200 and body["match"] == {"path": "/orders2"} and body["labels"] == {"team": "a"}
    assert request(p.port, "GET", "/orders2")[0] == 200
    assert request(p.port, "GET", "/orders")[0] == 404
    assert call(p, "PATCH", "/routes/orders", {"priority": 1},
                content_type="application/merge-patch+json", headers={"If-Match": etag})[0] == 412
    # PUT replaces; If-None-Match: * only creates.
    assert call(p, "PUT", "/routes/orders", {"match": {"path": "/o3"}, "upstream": "svc"},
                headers={"If-None-Match": "*"})[0] == 412
    s, _, body = call(p, "PUT", "/routes/orders", {"match": {"path": "/o3"}, "upstream": "svc"})
    assert s == 200 and "labels" not in body
    assert request(p.port, "GET", "/o3")[0] == 200

    # DELETE: refused while referenced, naming the referrers.
    s, _, body = call(p, "DELETE", "/upstreams/svc")
    assert s == 409 and body["referrers"] == ["routes/orders"]
    assert call(p, "DELETE", "/routes/orders")[0] == 200
    assert request(p.port, "GET", "/o3")[0] == 404
    assert call(p, "DELETE", "/upstreams/svc")[0] == 200
    assert call(p, "GET", "/upstreams/svc", token=READ)[0] == 404


def test_tokens_scopes_audit_and_redaction(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    assert call(p, "GET", "/routes", token=None)[0] == 401
    s, h, body = call(p, "GET", "/routes", token="wrong-token-0123456789")
    assert s == 401 and h["www-authenticate"].startswith("Bearer")
    # Errors are JSON with a request id, as the gateway's are (the client's own when sane).
    assert len(body["request_id"]) == 32 and h["x-request-id"] == body["request_id"], body
    s, h, body = call(p, "GET", "/routes", token=None, headers={"X-Request-Id": "trace-me-42"})
    assert s == 401 and body["request_id"] == "trace-me-42" == h["x-request-id"], body
    assert call(p, "GET", "/routes", token=READ)[0] == 200
    assert call(p, "POST", "/upstreams", {"name": "x", "targets": [u.address]},
                token=READ)[0] == 403
    assert call(p, "POST", "/upstreams", {"name": "x", "targets": [u.address]},
                token="wrong-token-0123456789")[0] == 401

    key = "alice-secret-key-1"
    s, _, body = call(p, "POST", "/consumers",
                      {"name": "alice", "credentials": {"key-auth": [{"key": key}]}})
    assert s == 201 and key not in json.dumps(body)
    assert body["credentials"]["key-auth"][0]["key"] == "<redacted>"
    call(p, "PUT", "/routes/seed", {"match": {"path": "/seed"}, "upstream": "seed",
                                    "plugins": [{"name": "key-auth"}]})
    assert request(p.port, "GET", "/seed", headers={"apikey": key})[0] == 200
    # Read, modify, write back: the redacted key is kept, not replaced by "<redacted>".
    alice = call(p, "GET", "/consumers/alice", token=READ)[2]
    alice["groups"] = ["gold"]
    assert call(p, "PUT", "/consumers/alice", alice)[0] == 200
    assert request(p.port, "GET", "/seed", headers={"apikey": key})[0] == 200
    assert request(p.port, "GET", "/seed", headers={"apikey": "<redacted>"})[0] == 401

    records = call(p, "GET", "/audit?limit=50", token=READ)[2]["data"]
    text = json.dumps(records)
    assert key not in text and WRITE not in text and READ not in text
    statuses = [(r["actor"], r["method"], r["status"]) for r in records]
    assert ("viewer", "POST", 403) in statuses and ("anonymous", "POST", 401) in statuses
    assert ("ci", "PUT", 200) in statuses
    created = next(r for r in records if r["method"] == "POST" and r["status"] == 201)
    assert created["diff"][0]["op"] == "create" and created["diff"][0]["name"] == "alice"


def test_bad_input(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    assert call(p, "GET", "/widgets", token=READ)[0] == 404
    s, _, body = call(p, "POST", "/upstreams", '{"name": "x", "targets": [')
    assert s == 400 and "line 1, column" in body["error"]
    assert call(p, "POST", "/upstreams", {"name": "x"}, content_type="text/plain")[0] == 415
    for bad in ["a\x01b", "x" * 257]:
        assert call(p, "POST", "/upstreams", {"name": bad, "targets": [u.address]})[0] == 400
    assert call(p, "PUT", "/upstreams/a%2Fb", {"targets": [u.address]})[0] == 400
    # A field of the wrong type is the validator's 400 (an API's state read as a string threw:
    # a reply with no answer before, a 500 once the listener caught it).
    s, _, body = call(p, "PUT", "/apis/shop", {"state": 5, "base_path": "/shop"})
    assert s == 400 and body["errors"][0]["path"] == "/apis/0/state", body
    # Over 16 MiB: refused from the head alone (the body is never read).
    with socket.create_connection(("127.0.0.1", p.admin_port), timeout=5) as c:
        c.sendall(b"POST /admin/v1/upstreams HTTP/1.1\r\nHost: a\r\n"
                  b"Authorization: Bearer " + WRITE.encode() + b"\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 16777217\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 413")
    assert call(p, "GET", "/revision", token=READ)[2]["revision"] == 1
    # Refused writes are audited too, whatever refused them.
    statuses = {r["status"] for r in call(p, "GET", "/audit", token=READ)[2]["data"]}
    assert {400, 415} <= statuses


def test_apply_plans_prunes_by_label_and_is_one_transaction(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    doc = {"upstreams": [{"name": "seed", "targets": [u.address]}],
           "routes": [{"name": "seed", "match": {"path": "/seed"}, "upstream": "seed"},
                      {"name": "a", "match": {"path": "/a"}, "upstream": "seed",
                       "labels": {"team": "a"}},
                      {"name": "b", "match": {"path": "/b"}, "upstream": "seed",
                       "labels": {"team": "b"}}]}
    s, _, plan = call(p, "POST", "/config?dry_run=true", doc)
    assert s == 200 and plan["errors"] == []
    assert {c["name"] for c in plan["create"]} == {"a", "b"} and plan["update"] == []
    assert call(p, "GET", "/revision", token=READ)[2]["revision"] == 1  # a plan changes nothing
    s, h, out = call(p, "POST", "/config", doc)
    assert s == 200 and out["revision"] == 2
    assert request(p.port, "GET", "/a")[0] == 200 and request(p.port, "GET", "/b")[0] == 200
    # The same document again: nothing to do, no new revision.
    s, _, again = call(p, "POST", "/config", doc)
    assert (again["create"], again["update"], again["delete"]) == ([], [], [])
    assert again["revision"] == 2
    # Pruning limited to team=a: b stays although the document lacks it.
    smaller = {"upstreams": doc["upstreams"], "routes": doc["routes"][:1]}
    s, _, out = call(p, "POST", "/config?prune_labels=team=a", smaller)
    assert [c["name"] for c in out["delete"]] == ["a"]
    assert request(p.port, "GET", "/a")[0] == 404 and request(p.port, "GET", "/b")[0] == 200
    # A plan deleting what is still referenced: 400 listing the reference; nothing applied.
    s, _, out = call(p, "POST", "/config", {"routes": doc["routes"][:1] + doc["routes"][2:]})
    assert s == 400 and any(e["path"].endswith("/upstream") for e in out["errors"])
    assert request(p.port, "GET", "/b")[0] == 200
    # YAML in, YAML out; server sections are refused.
    yaml_doc = "routes:\n  - {name: seed, match: {path: /seed}, upstream: seed}\n"
    s, _, out = call(p, "POST", "/config?prune=false&dry_run=true", yaml_doc,
                     content_type="application/yaml")
    assert s == 200 and out["delete"] == []
    assert call(p, "POST", "/config", {"server": {"workers": 1}})[0] == 400
    req = urllib.request.Request(f"http://127.0.0.1:{p.admin_port}/admin/v1/config",
                                 headers={"Authorization": f"Bearer {READ}",
                                          "Accept": "application/yaml"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.headers["Content-Type"] == "application/yaml"
        assert "routes:" in r.read().decode()


def test_concurrent_writers_lose_no_update(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    results = {"ok": 0, "stale": 0, "other": []}
    lock = threading.Lock()

    def writer():
        done = 0
        while done < 100:
            s, h, body = call(p, "GET", "/routes/seed", token=READ)
            count = int(body.get("labels", {}).get("count", "0"))
            s, _, _ = call(p, "PATCH", "/routes/seed", {"labels": {"count": str(count + 1)}},
                           content_type="application/merge-patch+json",
                           headers={"If-Match": h["etag"]})
            with lock:
                if s == 200:
                    results["ok"] += 1
                    done += 1
                elif s == 412:
                    results["stale"] += 1
                else:
                    results["other"].append(s)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results["other"] == []
    assert results["ok"] == 200
    final = call(p, "GET", "/routes/seed", token=READ)[2]
    assert final["labels"]["count"] == "200"  # every accepted write built on the one before


def test_restart_keeps_the_database_and_refuses_a_second_source(portico, upstreams, tmp_path):
    u = upstreams()
    cfg = admin_config(tmp_path, u.address)
    p = portico(config=cfg)
    assert call(p, "POST", "/routes", {"name": "kept", "match": {"path": "/kept"},
                                       "upstream": "seed"})[0] == 201
    p.stop()
    # The file still lists entities: refused, naming them.
    r = subprocess.run([PORTICO_BIN, "run", "-c", str(p.config_path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and "still lists upstreams, routes" in r.stderr
    cfg = admin_config(tmp_path, u.address, with_entities=False)
    q = portico(config=cfg)
    assert request(q.port, "GET", "/kept")[0] == 200
    assert call(q, "GET", "/revision", token=READ)[2]["revision"] == 2
    # `portico validate` compiles the database's entities with the file (nothing written).
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(q.config_path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0 and "2 routes" in r.stdout and "revision 2" in r.stdout, r.stdout


def test_damaged_database_and_open_admin_listener_refused(tmp_path, upstreams):
    u = upstreams()
    cfg = admin_config(tmp_path, u.address)
    (tmp_path / "portico.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([PORTICO_BIN, "run", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0 and "portico.db" in r.stderr
    assert "malformed" in r.stderr or "not a database" in r.stderr, r.stderr
    (tmp_path / "x").mkdir()
    cfg = admin_config(tmp_path / "x", u.address, tokens=False)
    cfg["server"]["admin"]["listen"] = f"0.0.0.0:{free_port()}"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([PORTICO_BIN, "run", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0 and "server.admin.tokens" in r.stderr


def test_file_store_is_read_only(portico, upstreams):
    u = upstreams()
    p = portico(upstreams={"svc": [u.address]},
                routes=[{"name": "r", "match": {"path": "/r"}, "upstream": "svc"}])
    s, _, body = call(p, "GET", "/routes", token=None)  # no tokens: read-only, loopback only
    assert s == 200 and [r["name"] for r in body["data"]] == ["r"]
    s, h, body = call(p, "POST", "/routes", {"name": "x", "match": {"path": "/x"},
                                             "upstream": "svc"}, token=None)
    assert s == 403 and "read-only" in body["error"]


def test_cli_dump_diff_apply_round_trip(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    target = ["--admin", f"http://127.0.0.1:{p.admin_port}"]
    env = {**os.environ, "PORTICO_ADMIN_TOKEN": WRITE}

    def cli(*args):
        r = subprocess.run([PORTICO_BIN, *args, *target], capture_output=True, text=True,
                           timeout=30, env=env)
        return r.returncode, r.stdout, r.stderr

    code, dumped, _ = cli("dump")
    assert code == 0 and "routes:" in dumped and "revision" not in dumped
    entities = tmp_path / "entities.yaml"
    entities.write_text(dumped)
    assert cli("diff", "-f", str(entities), "--prune") == (0, "", "")  # dump, then diff: nothing
    entities.write_text(dumped.replace('"/seed"', '"/seed2"') +
                        "apis:\n  - {name: shop, base_path: /shop}\n")
    code, out, _ = cli("diff", "-f", str(entities))
    assert code == 1 and out.splitlines() == ["+ apis/shop", "~ routes/seed"]
    code, out, _ = cli("apply", "-f", str(entities), "--dry-run")
    assert code == 0 and request(p.port, "GET", "/seed2")[0] == 404
    code, out, _ = cli("apply", "-f", str(entities))
    assert code == 0 and out.splitlines()[-1].startswith("revision ")
    assert request(p.port, "GET", "/seed2")[0] == 200
    assert cli("diff", "-f", str(entities), "--prune")[0] == 0
    # Offline, from the config's own database (the running node shares it through WAL).
    code, offline, _ = cli("dump", "-c", str(p.config_path))
    assert code == 0 and offline == cli("dump")[1]
    assert cli("diff", "-f", str(entities), "--prune", "-c", str(p.config_path))[0] == 0
    # A refused apply: exit 1 with the error's pointer.
    entities.write_text("routes:\n  - {name: bad, match: {path: /b}, upstream: nope}\n")
    code, _, err = cli("apply", "-f", str(entities))
    assert code == 1 and "/routes/1/upstream" in err
    env["PORTICO_ADMIN_TOKEN"] = "wrong-token-0123456789"
    assert cli("dump")[0] == 2


def test_writes_under_load_lose_no_request_and_are_live_on_return(portico, upstreams, tmp_path):
    from test_lifecycle import wrk
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    result = {}
    t = threading.Thread(target=lambda: result.update(r=wrk(p.port, 4, "/seed")))
    t.start()
    not_live = 0
    for i in range(20):
        s, _, _ = call(p, "POST", "/routes", {"name": f"w{i}", "match": {"path": f"/w{i}"},
                                              "upstream": "seed"})
        assert s == 201
        not_live += request(p.port, "GET", f"/w{i}")[0] != 200  # at once, fresh connection
    t.join(timeout=60)
    total, failed, out = result["r"]
    assert total > 100 and failed == 0, out
    assert not_live == 0


@pytest.mark.heavy
def test_single_route_writes_at_10000_routes_are_live_on_return_and_fast(portico, upstreams,
                                                                          tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    big = {"upstreams": [{"name": "seed", "targets": [u.address]}],
           "routes": [{"name": f"r{i}", "match": {"path": f"/svc{i}/items/{{id}}"},
                       "upstream": "seed"} for i in range(10000)]}
    assert call(p, "POST", "/config", big)[0] == 200
    took = []

    def timed(method, path, body=None):
        start = time.perf_counter()
        status = call(p, method, path, body)[0]
        took.append((time.perf_counter() - start) * 1000)
        return status

    for i in range(20):  # create, replace and delete, each checked live at once
        assert timed("POST", "/routes", {"name": f"new{i}", "match": {"path": f"/new{i}"},
                                         "upstream": "seed"}) == 201
        assert request(p.port, "GET", f"/new{i}")[0] == 200
        n = 100 + i * 450
        assert timed("PUT", f"/routes/r{n}", {"name": f"r{n}", "match": {"path": f"/moved{n}"},
                                              "upstream": "seed"}) == 200
        assert request(p.port, "GET", f"/moved{n}")[0] == 200
        assert request(p.port, "GET", f"/svc{n}/items/1")[0] == 404
        assert timed("DELETE", f"/routes/r{n + 1}") == 200
        assert request(p.port, "GET", f"/svc{n + 1}/items/1")[0] == 404
        assert request(p.port, "GET", f"/svc{n + 2}/items/1")[0] == 200
    took.sort()
    p50, p99 = took[len(took) // 2], took[int(len(took) * 0.99) - 1]
    print(f"single-route writes at 10,000 routes: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    # The contract is p99 <= 50 ms (docs/performance.md measures it); on a shared 2-core CI
    # machine the test holds the median to it, which a whole rebuild per write (~90 ms) fails.
    assert p50 <= 50, took


@pytest.mark.heavy
def test_kill_during_a_10000_route_apply_leaves_old_or_new(tmp_path, upstreams):
    u = upstreams()
    cfg = admin_config(tmp_path, u.address, with_entities=False)
    cfg["upstreams"] = [{"name": "seed", "targets": [u.address]}]
    big = {"upstreams": cfg["upstreams"],
           "routes": [{"name": f"r{i}", "match": {"path": f"/r{i}"}, "upstream": "seed"}
                      for i in range(10000)]}
    body = json.dumps(big).encode()
    seeding = Portico(tmp_path, cfg)  # the database gets the upstream, the file loses it
    seeding.stop()
    del cfg["upstreams"]
    for delay in (0.05, 0.15, 0.3, 0.6):
        p = Portico(tmp_path, cfg)
        try:
            before = call(p, "GET", "/revision", token=READ)[2]["revision"]
            routes_before = len(call(p, "GET", "/routes?limit=1000", token=READ)[2]["data"])
            def apply():
                try:
                    call(p, "POST", "/config", body)
                except OSError:
                    pass  # killed before it answered: what the test is about
            threading.Thread(target=apply, daemon=True).start()
            time.sleep(delay)
            p.proc.send_signal(signal.SIGKILL)
            p.proc.wait(timeout=10)
        finally:
            p.log.close()
        q = Portico(tmp_path, cfg)
        try:
            after = call(q, "GET", "/revision", token=READ)[2]["revision"]
            n = 0
            page = call(q, "GET", "/routes?limit=1000", token=READ)[2]
            n += len(page["data"])
            while page["next"]:
                page = call(q, "GET", f"/routes?limit=1000&after={page['next']}", token=READ)[2]
                n += len(page["data"])
            # All or nothing: the old routes at the old revision, or all 10,000 at the next.
            assert (after, n) in ((before, routes_before), (before + 1, 10000)), (after, n)
            if n:  # back to the old state for the next round
                call(q, "POST", "/config", {"upstreams": big["upstreams"]})
        finally:
            q.stop()


def test_admin_listener_over_mutual_tls(tmp_path, upstreams):
    from certs import Pki
    pki = Pki(tmp_path / "pki")
    server = pki.issue("admin", "admin.test", dns=["admin.test"])
    ops = pki.issue("ops", "ops", client=True)
    u = upstreams()
    cfg = admin_config(tmp_path, u.address)
    cfg["server"]["admin"]["tls"] = {
        "certificates": [{"cert": server[0], "key": server[1]}],
        "client_auth": {"ca": pki.ca_file, "mode": "required"}}
    port = cfg["server"]["admin"]["listen"].rsplit(":", 1)[1]
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(cfg))
    log = open(tmp_path / "log", "wb")
    proc = subprocess.Popen([PORTICO_BIN, "run", "-c", str(path)], stdout=log,
                            stderr=subprocess.STDOUT)

    def admin_curl(*args):
        return subprocess.run(
            ["curl", "-sS", "--max-time", "5", "--cacert", pki.ca_file, "--resolve",
             f"admin.test:{port}:127.0.0.1", "-H", f"Authorization: Bearer {READ}", *args,
             "-w", "\n%{http_code}", f"https://admin.test:{port}/admin/v1/revision"],
            capture_output=True, text=True, timeout=10)

    try:
        wait_for(lambda: admin_curl("--cert", ops[0], "--key", ops[1]).stdout.endswith("200"),
                 what="the admin listener over TLS")
        ok = admin_curl("--cert", ops[0], "--key", ops[1])
        assert json.loads(ok.stdout.rpartition("\n")[0]) == {"revision": 1}
        assert admin_curl().returncode != 0  # no client certificate: no handshake
        with pytest.raises(OSError):  # plain HTTP on it gets no HTTP answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/v1/revision", timeout=3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()


def test_plans_are_entities_that_name_existing_apis(portico, upstreams, tmp_path):
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    assert call(p, "POST", "/apis", {"name": "items", "base_path": "/items"})[0] == 201
    s, _, body = call(p, "POST", "/plans", {"name": "free", "apis": ["nope"],
                                            "limits": [{"requests": 5, "per": "1m"}]})
    assert s == 400 and body["errors"] == [{"path": "/plans/0/apis/0",
                                            "message": 'unknown api "nope"'}], body
    s, _, body = call(p, "POST", "/plans", {"name": "free", "apis": ["items"],
                                            "limits": [{"requests": 5, "per": "1m"}],
                                            "quota": {"requests": 1000, "per": "day"},
                                            "approval": "manual"})
    assert s == 201 and body["approval"] == "manual", body
    assert [x["name"] for x in call(p, "GET", "/plans", token=READ)[2]["data"]] == ["free"]
    # An API a plan opens cannot go while the plan lists it.
    s, _, body = call(p, "DELETE", "/apis/items")
    assert s == 409 and body["referrers"] == ["plans/free"], body
    assert "plans:" in call(p, "GET", "/config", token=READ,
                            headers={"Accept": "application/yaml"})[2]
    assert call(p, "DELETE", "/plans/free")[0] == 200
    assert call(p, "DELETE", "/apis/items")[0] == 200


def test_yaml_that_is_not_utf8_is_refused(portico, upstreams, tmp_path):
    """The YAML reader keeps any bytes; such a name would reach metrics labels and the
    Admin API's own JSON (which could no longer be written). Refused like JSON's parser does."""
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    doc = b"routes:\n  - {name: \"b\xff\", match: {path: /b}, upstream: seed}\n"
    s, _, out = call(p, "POST", "/config?prune=false", doc, content_type="application/yaml")
    assert s == 400 and "not valid UTF-8 (" in json.dumps(out) and ":2:14)" in json.dumps(out)
    s, _, out = call(p, "GET", "/config", token=READ)
    assert s == 200 and [r["name"] for r in out["routes"]] == ["seed"]
    assert request(p.port, "GET", "/seed")[0] == 200


def test_documents_that_would_exhaust_the_parsers_are_refused(portico, upstreams, tmp_path):
    """A JSON body nested 100,000 deep ran the config tree's recursion off the stack (the
    process died); ten lines of YAML aliases stood for ten million values (gigabytes, tens of
    seconds). Both are refused at once and the gateway keeps serving."""
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    deep = b'{"routes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    started = time.monotonic()
    s, _, out = call(p, "POST", "/config?dry_run=true", deep)
    assert s == 400 and "nested more than 256 levels deep" in json.dumps(out)
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        laughs.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    s, _, out = call(p, "POST", "/config?dry_run=true", "\n".join(laughs) + "\n",
                     content_type="application/yaml")
    assert s == 400 and "aliases repeat more values than the text holds" in json.dumps(out)
    assert time.monotonic() - started < 5
    assert p.proc.poll() is None
    assert request(p.port, "GET", "/seed")[0] == 200


def test_the_json_export_posted_back_is_the_same_document(portico, upstreams, tmp_path):
    """Entity bodies (PUT, POST, PATCH) are plain JSON: a "${" in one is a literal, and their
    answers show it as it is. Documents (POST /config) are config text, where a literal "${" is
    written "$${". The export, JSON or YAML, is written so too: before, the JSON export said
    "${HOME}", which POSTed back read as an environment variable and was refused."""
    u = upstreams()
    p = portico(config=admin_config(tmp_path, u.address))
    note = "costs ${HOME} a month"
    s, _, body = call(p, "PUT", "/consumers/ann", {"labels": {"note": note}})
    assert s == 201 and body["labels"]["note"] == note, body
    s, _, got = call(p, "GET", "/consumers/ann", token=READ)
    assert got["labels"]["note"] == note
    s, _, again = call(p, "PUT", "/consumers/ann",
                       {k: v for k, v in got.items() if k not in ("created_at", "updated_at")})
    assert s == 200 and again["labels"]["note"] == note, again
    s, _, doc = call(p, "GET", "/config", token=READ)
    assert [c for c in doc["consumers"] if c["name"] == "ann"][0]["labels"]["note"] == \
        "costs $${HOME} a month"
    s, _, plan = call(p, "POST", "/config?dry_run=true", doc)
    assert s == 200 and plan["update"] == [] and plan["create"] == [], plan
    yaml_doc = call(p, "GET", "/config", token=READ, headers={"Accept": "application/yaml"})[2]
    assert "$${HOME}" in yaml_doc
    s, _, plan = call(p, "POST", "/config?dry_run=true", yaml_doc, content_type="application/yaml")
    assert s == 200 and plan["update"] == [] and plan["create"] == [], plan
