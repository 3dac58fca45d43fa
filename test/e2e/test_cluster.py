"""Portico nodes sharing their entities through a real etcd (`store: etcd`): a write on one
node is live on the others (propagation measured), If-Match holds across nodes, deletes
propagate, a hand-written bad value is ignored, and with etcd down nodes keep serving while
writes answer 503, catching up when it returns."""
import json
import statistics
import subprocess
import threading
import time

import pytest

from conftest import Portico, base_config, free_port, request, wait_for
from etcd_server import EtcdCluster, b64
from test_admin_api import WRITE, call


def node_config(etcd, prefix="/portico"):
    cfg = base_config(free_port(), free_port(), {}, [])
    del cfg["upstreams"]
    del cfg["routes"]
    cfg["server"]["admin"]["tokens"] = [{"name": "ci", "token": WRITE, "scope": "write"}]
    cfg["store"] = {"type": "etcd", "endpoints": etcd.endpoints, "prefix": prefix}
    return cfg


@pytest.fixture
def cluster(tmp_path):
    etcd = EtcdCluster(tmp_path)
    nodes = []

    def start(n=3, server=None, store=None):
        for i in range(n):
            work = tmp_path / f"node{len(nodes)}"
            work.mkdir()
            cfg = node_config(etcd)
            cfg["server"].update(server or {})
            cfg["store"].update(store or {})
            nodes.append(Portico(work, cfg))
        return nodes

    yield etcd, start
    for p in nodes:
        p.stop()
    etcd.stop_all()
    for p in nodes:  # under the asan build, a sanitizer report fails the test
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in p.logs(), p.logs()[-4000:]


def hello(name, body="hi", path=None):
    return {"name": name, "match": {"path": path or f"/{name}"},
            "plugins": [{"name": "static-response", "config": {"status": 200, "body": body}}]}


def test_a_write_on_one_node_is_live_on_all(cluster):
    etcd, start = cluster
    a, b, c = start(3)
    took = []
    for i in range(30):
        t0 = time.monotonic()
        assert call(a, "POST", "/routes", hello(f"r{i}"))[0] == 201
        for p in (b, c):
            wait_for(lambda: request(p.port, "GET", f"/r{i}")[0] == 200, timeout=5,
                     what=f"r{i} on the other nodes")
        took.append((time.monotonic() - t0) * 1000)
    took.sort()
    print(f"propagation to 2 other nodes (write answered + live there): "
          f"p50 {statistics.median(took):.1f} ms, p99 {took[int(len(took) * 0.99) - 1]:.1f} ms")
    assert took[int(len(took) * 0.99) - 1] <= 500
    # Deletes travel too; the objects read the same everywhere.
    assert call(b, "DELETE", "/routes/r3")[0] == 200
    wait_for(lambda: request(a.port, "GET", "/r3")[0] == 404, timeout=5, what="delete on a")
    assert call(c, "GET", "/routes/r4")[2] == call(a, "GET", "/routes/r4")[2]


def test_if_match_holds_across_nodes(cluster):
    etcd, start = cluster
    a, b = start(2)
    status, headers, _ = call(a, "POST", "/routes", hello("shared"))
    assert status == 201
    etag = headers["etag"]
    wait_for(lambda: call(b, "GET", "/routes/shared")[0] == 200, timeout=5, what="on b")
    assert call(b, "GET", "/routes/shared")[1]["etag"] == etag  # one revision cluster-wide
    results = []

    def put(p, body):
        results.append(call(p, "PUT", "/routes/shared", hello("shared", body),
                            headers={"If-Match": etag})[0])
    threads = [threading.Thread(target=put, args=(p, body)) for p, body in ((a, "A"), (b, "B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0] == 200 and sorted(results)[1] in (409, 412), results
    wait_for(lambda: request(a.port, "GET", "/shared")[2] == request(b.port, "GET", "/shared")[2],
             timeout=5, what="both nodes on the winner")


def test_a_bad_value_in_etcd_is_ignored_and_the_rest_applies(cluster):
    etcd, start = cluster
    (a,) = start(1)
    etcd.put("/portico/routes/broken", "{not json")
    etcd.put("/portico/routes/other-name", '{"name": "mismatch"}')
    assert call(a, "POST", "/routes", hello("fine"))[0] == 201
    assert request(a.port, "GET", "/fine")[0] == 200
    # The watch brings the bad values on its own thread: logged when it gets there.
    wait_for(lambda: "etcd key /portico/routes/broken does not hold an object" in a.logs(),
             timeout=5, what="the bad value logged")
    assert call(a, "GET", "/routes/broken")[0] == 404
    # ... and the node reports it, naming the key (its heartbeat carries it).
    wait_for(lambda: "/portico/routes/" in call(a, "GET", "/nodes")[2]["data"][0]["error"],
             timeout=5, what="the error in /admin/v1/nodes")


def test_nodes_register_with_a_lease_and_report_their_revision(cluster):
    etcd, start = cluster
    a, b, c = start(3)
    status, headers, _ = call(a, "POST", "/routes", hello("counted"))
    assert status == 201
    revision = int(headers["x-portico-revision"])

    def listed():
        data = call(b, "GET", "/nodes")[2]["data"]
        return len(data) == 3 and all(n["revision"] >= revision for n in data) and data
    wait_for(listed, timeout=8, what="3 nodes at the new revision")
    data = call(b, "GET", "/nodes")[2]["data"]
    assert sorted(n["address"] for n in data) == sorted(
        f"127.0.0.1:{p.admin_port}" for p in (a, b, c))
    assert all(n["error"] == "" and n["heartbeat_age_ms"] < 5000 for n in data), data
    # Connections to etcd per node, whatever its workers: calls, watch, heartbeat.
    ports = {str(port) for port in etcd.client.values()}
    for p in (a, b, c):
        out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                             text=True).stdout
        mine = [line for line in out.splitlines() if f"pid={p.proc.pid}," in line and
                line.split()[3].rsplit(":", 1)[1] in ports]
        assert 1 <= len(mine) <= 3, mine
    c.stop()  # its lease is revoked on the way out
    wait_for(lambda: len(call(a, "GET", "/nodes")[2]["data"]) == 2, timeout=5,
             what="a stopped node leaves the list")


@pytest.mark.heavy
def test_etcd_down_for_30_s_keeps_serving_refuses_writes_then_catches_up(cluster):
    etcd, start = cluster
    a, b = start(2)
    assert call(a, "POST", "/routes", hello("before"))[0] == 201
    wait_for(lambda: request(b.port, "GET", "/before")[0] == 200, timeout=5, what="before on b")
    from test_lifecycle import wrk
    results = {}
    loads = [threading.Thread(target=lambda p=p: results.update({p.port: wrk(p.port, 31,
                                                                               "/before")}))
             for p in (a, b)]
    for t in loads:
        t.start()
    time.sleep(0.5)
    etcd.stop_all()  # for 30 s, under load: no request notices
    status, _, body = call(a, "POST", "/routes", hello("during"))
    assert status == 503 and "etcd" in body["error"], body
    assert request(a.port, "GET", "/during")[0] == 404  # nothing half-applied
    for t in loads:
        t.join(timeout=90)
    for total, failed, out in results.values():
        assert total > 1000 and failed == 0, out
    assert request(a.port, "GET", "/before")[0] == 200
    assert request(b.port, "GET", "/before")[0] == 200
    for n in etcd.names:
        etcd.start(n)
    etcd.wait_healthy()
    wait_for(lambda: call(a, "POST", "/routes", hello("after"))[0] == 201, timeout=10,
             what="writes after etcd returned")
    wait_for(lambda: request(b.port, "GET", "/after")[0] == 200, timeout=10,
             what="b caught up without a restart")
    assert request(b.port, "GET", "/before")[0] == 200


def test_a_node_starts_from_its_cache_while_etcd_is_down(tmp_path):
    etcd = EtcdCluster(tmp_path)
    work = tmp_path / "node"
    work.mkdir()
    cfg = node_config(etcd)
    cfg["store"]["cache"] = str(work / "last-good.json")
    p = Portico(work, cfg)
    try:
        assert call(p, "POST", "/routes", hello("cached"))[0] == 201
        p.stop()
        etcd.stop_all()
        p = Portico(work, cfg)  # etcd down: from the cache, loudly
        assert request(p.port, "GET", "/cached")[0] == 200
        assert p.admin("/readyz") == (200, '{"status":"stale config"}')
        assert "STARTING FROM THE CACHE" in p.logs()
        assert call(p, "POST", "/routes", hello("refused"))[0] == 503
        for n in etcd.names:
            etcd.start(n)
        etcd.wait_healthy()
        wait_for(lambda: p.admin("/readyz") == (200, '{"status":"ready"}'), timeout=10,
                 what="caught up once etcd returned")
        assert call(p, "POST", "/routes", hello("after"))[0] == 201
        assert request(p.port, "GET", "/after")[0] == 200
    finally:
        p.stop()
        etcd.stop_all()
    # Without a cache, a node does not start on an unreachable etcd (never an empty config).
    del cfg["store"]["cache"]
    bad = tmp_path / "nocache"
    bad.mkdir()
    with pytest.raises(AssertionError, match="store: etcd"):
        Portico(bad, cfg)


@pytest.mark.heavy
def test_killing_the_etcd_leader_or_a_node_under_load(tmp_path, upstreams):
    """3 etcd members, 3 nodes, wrk on two of them: killing the etcd leader fails no request and
    writes work again within 5 s; killing a node fails only what it had in flight."""
    from test_lifecycle import wrk
    etcd = EtcdCluster(tmp_path, members=3)
    u = upstreams()
    nodes = []
    try:
        for i in range(3):
            work = tmp_path / f"node{i}"
            work.mkdir()
            nodes.append(Portico(work, node_config(etcd)))
        a, b, c = nodes
        assert call(a, "POST", "/upstreams", {"name": "svc", "targets": [u.address]})[0] == 201
        assert call(a, "POST", "/routes", {"name": "all", "match": {"path_prefix": "/"},
                                           "upstream": "svc"})[0] == 201
        for p in nodes:
            wait_for(lambda: request(p.port, "GET", "/x")[0] == 200, timeout=5, what="route")
        results = {}
        loads = [threading.Thread(target=lambda p=p: results.update({p.port: wrk(p.port, 5)}))
                 for p in (a, b)]
        for t in loads:
            t.start()
        time.sleep(1)
        leader = etcd.leader()
        assert leader is not None
        etcd.kill(leader)
        killed_at = time.monotonic()
        wait_for(lambda: call(c, "POST", "/routes", hello(f"after-{leader}"))[0] == 201,
                 timeout=5, interval=0.1, what="a write after the leader died")
        recovered = time.monotonic() - killed_at
        print(f"writes again {recovered * 1000:.0f} ms after the etcd leader was killed")
        for t in loads:
            t.join(timeout=60)
        for port, (total, failed, out) in results.items():
            assert total > 100 and failed == 0, out
        wait_for(lambda: request(a.port, "GET", f"/after-{leader}")[0] == 200, timeout=5,
                 what="the write on the other nodes")
        # kill -9 one node under load on another: the survivors serve everything.
        load = threading.Thread(target=lambda: results.update(b=wrk(b.port, 3)))
        load.start()
        c.proc.kill()
        c.proc.wait()
        load.join(timeout=60)
        total, failed, out = results["b"]
        assert total > 100 and failed == 0, out
    finally:
        for p in nodes:
            p.stop()
        etcd.stop_all()


def test_nodes_authenticate_to_etcd(tmp_path):
    etcd = EtcdCluster(tmp_path)
    try:
        etcd.call("/v3/auth/user/add", {"name": "root", "password": "root-secret-42"})
        etcd.call("/v3/auth/user/grant", {"user": "root", "role": "root"})
        etcd.call("/v3/auth/enable", {})
        work = tmp_path / "node"
        work.mkdir()
        cfg = node_config(etcd)
        cfg["store"].update({"username": "root", "password": "${ETCD_PASSWORD}"})
        p = Portico(work, cfg, env={"ETCD_PASSWORD": "root-secret-42"})
        try:
            assert call(p, "POST", "/routes", hello("authed"))[0] == 201
            assert request(p.port, "GET", "/authed")[0] == 200
            assert len(call(p, "GET", "/nodes")[2]["data"]) == 1
            assert "root-secret-42" not in p.logs()
        finally:
            p.stop()
        # A wrong password refuses the start with etcd's answer, naming the user.
        bad = tmp_path / "bad"
        bad.mkdir()
        with pytest.raises(AssertionError, match="authenticating as root"):
            Portico(bad, cfg, env={"ETCD_PASSWORD": "wrong"})
    finally:
        etcd.stop_all()


def test_nodes_reach_etcd_over_mutual_tls(tmp_path):
    from certs import Pki
    pki = Pki(tmp_path / "pki")
    server = pki.issue("etcd", "etcd", dns=["localhost"], both=True)
    client = pki.issue("portico", "portico", client=True)
    etcd = EtcdCluster(tmp_path, tls={"cert": server[0], "key": server[1], "ca": pki.ca_file,
                                      "client_cert": client[0], "client_key": client[1]})
    try:
        cfg = node_config(etcd)
        cfg["store"]["tls"] = {"ca": pki.ca_file, "cert": client[0], "key": client[1],
                               "server_name": "localhost"}
        a_dir, b_dir = tmp_path / "a", tmp_path / "b"
        a_dir.mkdir()
        b_dir.mkdir()
        a = Portico(a_dir, cfg)
        b = Portico(b_dir, cfg)
        try:
            assert call(a, "POST", "/routes", hello("secure"))[0] == 201
            wait_for(lambda: request(b.port, "GET", "/secure")[0] == 200, timeout=5,
                     what="the write on b, through the TLS watch")
        finally:
            a.stop()
            b.stop()
        # Without the client certificate etcd refuses the handshake: the start is refused.
        del cfg["store"]["tls"]["cert"], cfg["store"]["tls"]["key"]
        bad = tmp_path / "bad"
        bad.mkdir()
        with pytest.raises(AssertionError, match="TLS|etcd"):
            Portico(bad, cfg)
    finally:
        etcd.stop_all()


def test_a_cluster_rate_limit_stays_exact_when_a_node_dies(cluster, tmp_path):
    from redis_server import RedisServer
    etcd, start = cluster
    redis = RedisServer(tmp_path / "redis", free_port())
    try:
        a, b = start(2)
        route = hello("limited")
        route["plugins"].insert(0, {"name": "rate-limit", "config": {
            "limits": [{"requests": 20, "per": "1m"}], "key": ["route"], "backend": "redis",
            "redis": {"address": redis.address}, "on_backend_failure": "fail_closed"}})
        assert call(a, "POST", "/routes", route)[0] == 201
        wait_for(lambda: call(b, "GET", "/routes/limited")[0] == 200, timeout=5, what="on b")
        codes = [request(p.port, "GET", "/limited")[0] for p in (a, b) for _ in range(5)]
        b.proc.kill()  # one node gone; the counter lives in Redis
        b.proc.wait()
        codes += [request(a.port, "GET", "/limited")[0] for _ in range(15)]
        assert codes.count(200) == 20 and codes.count(429) == 5, codes
    finally:
        redis.stop()


def test_the_audit_log_is_the_clusters(cluster):
    etcd, start = cluster
    a, b = start(2)
    assert call(a, "POST", "/routes", hello("audited"))[0] == 201
    assert call(b, "POST", "/routes", {"name": "bad", "upstream": "nope"})[0] == 400
    records = call(b, "GET", "/audit?limit=10")[2]["data"]
    assert [(r["method"], r["path"], r["status"]) for r in records[:2]] == [
        ("POST", "/admin/v1/routes", 400), ("POST", "/admin/v1/routes", 201)], records
    assert records[1]["diff"][0]["op"] == "create" and records[1]["diff"][0]["name"] == "audited"


def test_a_release_runs_on_every_node_and_rolls_back_everywhere(cluster, upstreams):
    """A release made on one node is served by all three at the same share; a change to a
    backend answering 500 is rolled back on every node within two intervals, a good one made on
    another node is promoted and committed everywhere."""
    from test_releases import INTERVAL_S, ROLLOUT, Load, wait_ended
    etcd, start = cluster
    a, b, c = start(3, {"rollout": ROLLOUT})
    good, bad, better = upstreams("good"), upstreams("bad"), upstreams("better")
    bad.forced_status = 500
    assert call(a, "POST", "/upstreams", {"name": "svc", "targets": [good.address]})[0] == 201
    assert call(a, "POST", "/routes", {"name": "api", "match": {"path_prefix": "/status"},
                                       "upstream": "svc"})[0] == 201
    for p in (a, b, c):
        wait_for(lambda: request(p.port, "GET", "/status/200")[0] == 200, timeout=5, what="route")
    loads = {p.port: Load(p.port, clients=2) for p in (a, b, c)}
    try:
        wait_for(lambda: all(len(load.answers) > 100 for load in loads.values()), what="traffic")
        t0 = time.monotonic()
        s, _, body = call(a, "PUT", "/upstreams/svc?rollout=true", {"targets": [bad.address]})
        assert s == 202, body
        rid = body["release"]
        # Every node follows it: writes wait there too, and each serves the candidate.
        wait_for(lambda: call(c, "POST", "/upstreams", {"name": "x", "targets": [good.address]})[0]
                 == 409, timeout=2, what="the release on node c")
        ended = wait_ended(a, rid, timeout=4 * INTERVAL_S)
        took = time.monotonic() - t0
        assert ended["state"] == "rolled_back" and "5xx ratio" in ended["reason"], ended
        assert took <= 2 * INTERVAL_S + 1, took
        for p in (b, c):
            wait_for(lambda: call(p, "GET", f"/releases/{rid}")[2]["state"] == "rolled_back",
                     timeout=2, what="the rollback on every node")
        saw = {port: sum(1 for x in load.since(t0) if x[1] == 500) for port, load in loads.items()}
        print(f"\ncluster release rolled back after {took:.2f} s; requests that saw the candidate "
              f"per node: {sorted(saw.values())}")
        assert all(n > 0 for n in saw.values()), saw
        time.sleep(0.5)
        after = time.monotonic()
        time.sleep(1)
        for load in loads.values():
            assert {(x[1], x[2]) for x in load.since(after)} == {(200, "good")}
        assert call(c, "GET", "/upstreams/svc")[2]["targets"] == [good.address]

        # A good change made on node b: promoted, committed once, live on every node.
        t1 = time.monotonic()
        s, _, body = call(b, "PUT", "/upstreams/svc?rollout=true", {"targets": [better.address]})
        assert s == 202, body
        rid = body["release"]
        ended = wait_ended(b, rid, timeout=6 * INTERVAL_S)
        assert ended["state"] == "promoted", (ended["reason"], ended["intervals"])
        assert ended["node"].endswith(f":{b.admin_port}"), ended["node"]  # b drove it
        for p in (a, c):
            wait_for(lambda: call(p, "GET", "/upstreams/svc")[2]["targets"] == [better.address],
                     timeout=2, what="the promoted change on every node")
            assert call(p, "GET", f"/releases/{rid}")[2]["state"] == "promoted"
        time.sleep(0.5)
        after = time.monotonic()
        time.sleep(0.5)
        for load in loads.values():
            assert {x[1] for x in load.since(t1)} == {200}
            assert {(x[1], x[2]) for x in load.since(after)} == {(200, "better")}
    finally:
        for load in loads.values():
            load.stop()


class Spread:
    """Clients in front of the nodes as an L4 balancer would be: each request goes to the next
    node in turn on a fresh connection; a refused connection is retried on the next node (the
    balancer's health check would drop the node), a request sent and not answered is lost."""

    def __init__(self, ports, clients=6):
        self.ports = list(ports)
        self.ok = self.lost = self.retried = 0
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        import http.client
        import socket
        turn = i
        while self.running:
            for attempt in range(len(self.ports)):
                port = self.ports[(turn + attempt) % len(self.ports)]
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                except OSError:  # refused, or reset from a dying node's backlog: nothing sent
                    with self.lock:
                        self.retried += 1
                    continue
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.sock = sock
                try:
                    conn.request("GET", "/x")
                    good = conn.getresponse().status == 200
                except (OSError, http.client.HTTPException):
                    good = False
                finally:
                    conn.close()
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.lost += 1
                break
            turn += 1

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(timeout=10)


def test_a_node_killed_under_spread_load_loses_only_its_in_flight_requests(cluster, upstreams):
    etcd, start = cluster
    a, b, c = start(3)
    u = upstreams()
    assert call(a, "POST", "/upstreams", {"name": "svc", "targets": [u.address]})[0] == 201
    assert call(a, "POST", "/routes", {"name": "all", "match": {"path_prefix": "/"},
                                       "upstream": "svc"})[0] == 201
    for p in (a, b, c):
        wait_for(lambda: request(p.port, "GET", "/x")[0] == 200, timeout=5, what="route")
    load = Spread([a.port, b.port, c.port])
    try:
        wait_for(lambda: load.ok > 300, timeout=10, what="traffic on the three nodes")
        c.proc.kill()  # -9
        c.proc.wait()
        before = load.ok
        wait_for(lambda: load.ok > before + 600, timeout=20, what="traffic after the kill")
    finally:
        load.stop()
    print(f"\nnode killed under load: {load.ok} answered, {load.lost} lost (in flight on it), "
          f"{load.retried} refused connections retried on another node")
    # At most one request per client can have been in flight on the killed node.
    assert load.lost <= len(load.threads), (load.ok, load.lost)
    assert load.retried > 0


def test_portal_usage_is_the_clusters(cluster):
    """Every node adds its applications' usage to etcd (store.usage_flush); the portal, on one
    node, shows the calls made through all of them and the quota left."""
    from test_plans import digest
    from test_portal import PASSWORD, Browser
    etcd, start = cluster
    portal_port = free_port()
    fast = {"usage_flush": "200ms"}
    a, = start(1, server={"portal": {"listen": f"127.0.0.1:{portal_port}"}}, store=fast)
    b = start(1, store=fast)[1]
    route = hello("items", path="/items/1")
    route["api"] = "items"
    assert call(a, "POST", "/apis", {"name": "items", "base_path": "/items"})[0] == 201
    assert call(a, "POST", "/routes", route)[0] == 201
    assert call(a, "POST", "/plans", {"name": "free", "apis": ["items"],
                                      "quota": {"requests": 100, "per": "day"}})[0] == 201
    web = Browser(portal_port)
    assert web.send("POST", "/signup", {"email": "dev@example.com", "password": PASSWORD})[0] \
        == 201
    assert web.login("dev@example.com")[0] == 200
    app = web.send("POST", "/apps", {"name": "mine"})[2]
    assert web.send("POST", f"/apps/{app['id']}/subscriptions",
                    {"api": "items", "plan": "free"})[0] == 201
    key = web.send("POST", f"/apps/{app['id']}/keys")[2]["key"]
    # A day long past, as a node would have written it then: pruned at the next write.
    old = f"/portico.usage/{app['id']}/00000001/items/gone-node"
    etcd.put(old, json.dumps({"requests": 99}))
    wait_for(lambda: request(b.port, "GET", "/items/1", {"apikey": key})[0] == 200, timeout=5,
             what="the subscription on b")
    codes = [request(p.port, "GET", "/items/1", {"apikey": key})[0] for p in (a, b, b, b)]
    assert codes == [200] * 4, codes

    def usage():
        return web.send("GET", f"/apps/{app['id']}/usage?days=1")[2]
    wait_for(lambda: usage()["data"] and usage()["data"][0]["requests"] == 5, timeout=10,
             what="b's usage in etcd")
    u = usage()
    assert u["quota"][0]["limit"] == 100
    # The local quota counts per node: the figure is the one the application saw last (b's
    # fourth answer; a's said 99).
    assert u["quota"][0]["remaining"] == 96, u
    assert etcd.call("/v3/kv/range", {"key": b64(old)}).get("count", "0") == "0"
