"""The cache filter with the real binary: concurrent misses coalesced into one upstream request
(across both workers), stale-while-revalidate refreshing once in the background, stale-if-error
when the backend fails or is gone, purge on the admin listener, what is never stored, encoded
answers only for clients that asked, 304s, HTTP/2, a flow's composed answer, /metrics."""
import gzip
import http.client
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

import conftest
import http_service


class Origin(http_service.Service):
    """GET /any/path?delay=MS&status=S&h=Name:Value&ages=A,B: "<path> #<n>" where n counts the
    requests for that path (`ages`: the n-th answer says Cache-Control: max-age=<n-th age>, the
    last one for the rest); `fail_with` makes every answer that status."""

    def __init__(self):
        self.counts = {}
        self.lock = threading.Lock()
        self.fail_with = None
        origin = self

        class Handler(http_service.Handler):
            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with origin.lock:
                    n = origin.counts.get(url.path, 0) + 1
                    origin.counts[url.path] = n
                if "delay" in q:
                    time.sleep(int(q["delay"]) / 1000)
                extra = [h.partition(":")[::2] for h in parse_qs(url.query).get("h", [])]
                if "ages" in q:
                    ages = q["ages"].split(",")
                    extra.append(("Cache-Control", f"max-age={ages[min(n, len(ages)) - 1]}"))
                status = origin.fail_with or int(q.get("status", 200))
                body = (f"{url.path} #{n} " + "x" * int(q.get("pad", 0))).encode()
                self.reply(status, "text/plain", body, extra)

            do_HEAD = do_GET

        super().__init__(Handler)

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


def cache_route(config, path="/", plugins_after=(), **extra):
    return {"name": extra.pop("name", "cached"), "match": {"path_prefix": path}, "upstream": "o",
            "plugins": [{"name": "cache", "config": config}, *plugins_after], **extra}


def get(port, path, headers=None):
    return conftest.request(port, "GET", path, headers)


def purge(p, body):
    req = urllib.request.Request(f"http://127.0.0.1:{p.admin_port}/cache/purge",
                                 data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_concurrent_cold_misses_make_one_upstream_request(portico, origin):
    p = portico(upstreams={"o": [origin.address]}, routes=[cache_route({"ttl": "60s"})])
    path = "/cold?delay=200"
    barrier = threading.Barrier(200)

    def one(_):
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=15)
        conn.connect()
        barrier.wait()  # every connection open: the 200 requests leave together
        conn.request("GET", path)
        r = conn.getresponse()
        result = r.status, r.getheader("Cache-Status"), r.read()
        conn.close()
        return result

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    assert origin.count("/cold") == 1
    assert {status for status, _, _ in results} == {200}
    assert {body for _, _, body in results} == {b"/cold #1 "}
    cache_statuses = [cs for _, cs, _ in results]
    assert cache_statuses.count("portico; fwd=miss; stored") == 1
    # the others waited for that one fetch (or came just after it was stored)
    assert all(cs in ("portico; fwd=miss; stored", "portico; fwd=miss; collapsed")
               or cs.startswith("portico; hit") for cs in cache_statuses), cache_statuses
    metrics = p.settled_metrics()
    assert "portico_cache_coalesced_total" in metrics
    assert p.metric("portico_cache_coalesced_total") >= 100
    assert p.metric("portico_cache_stored_total") == 1


def test_stale_while_revalidate_refreshes_once_in_the_background(portico, origin):
    p = portico(upstreams={"o": [origin.address]},
                routes=[cache_route({"stale_while_revalidate": "60s"})])
    # The first answer is fresh for 1 s, the refreshed one for 60 s: however slow the machine,
    # the refreshed entry stays fresh until the test ends.
    path = "/swr?delay=300&ages=1,60"
    assert get(p.port, path)[2] == b"/swr #1 "
    time.sleep(1.2)  # stale now, within stale_while_revalidate

    def many(_):
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        out = []
        for _ in range(50):
            conn.request("GET", path)
            r = conn.getresponse()
            out.append((r.status, r.read(), time.monotonic()))
        conn.close()
        return out

    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        results = [r for batch in pool.map(many, range(20)) for r in batch]
    assert len(results) == 1000
    assert {status for status, _, _ in results} == {200}
    # Nobody waited for the 300 ms refresh: the stale answer (or the refreshed one) at once.
    assert {body for _, body, _ in results} <= {b"/swr #1 ", b"/swr #2 "}
    conftest.wait_for(lambda: get(p.port, path)[2] == b"/swr #2 ",
                      what="the refreshed answer")
    assert origin.count("/swr") == 2  # the first fill and exactly one background refresh
    assert time.monotonic() - started < 10


def test_backend_failing_or_gone_serves_stale(portico, origin):
    p = portico(upstreams={"o": [origin.address]},
                routes=[cache_route({"ttl": "1s", "stale_if_error": "10m"})])
    assert get(p.port, "/sie")[2] == b"/sie #1 "
    time.sleep(1.1)
    origin.fail_with = 503
    status, h, body = get(p.port, "/sie")
    assert (status, body) == (200, b"/sie #1 ")
    assert h["cache-status"] == "portico; fwd=stale; fwd-status=503"
    assert int(h["age"]) >= 1
    origin.stop()  # unreachable now
    status, h, body = get(p.port, "/sie")
    assert (status, body) == (200, b"/sie #1 ")
    assert h["cache-status"].startswith("portico; fwd=stale; fwd-status=50")
    # nothing stored to fall back on: the error itself
    status, h, _ = get(p.port, "/never-seen")
    assert status in (502, 503)
    assert p.metric("portico_cache_stale_total") >= 2


def test_purge_by_key_tag_prefix_and_all(portico, origin):
    p = portico(upstreams={"o": [origin.address]}, routes=[
        {**cache_route({"tags": ["user:{request.path.id}", "users"]}, name="users"),
         "match": {"path": "/users/{id}"}},
        cache_route({}, path="/items/")])
    paths = ["/users/1", "/users/2", "/items/1", "/items/2"]
    for path in paths:
        get(p.port, path)
    for path in paths:
        assert get(p.port, path)[1]["cache-status"].startswith("portico; hit"), path

    assert purge(p, {"tag": "user:1"}) == (200, {"purged": 1})
    assert get(p.port, "/users/1")[1]["cache-status"] == "portico; fwd=miss; stored"
    assert get(p.port, "/users/2")[1]["cache-status"].startswith("portico; hit")
    assert origin.count("/users/1") == 2 and origin.count("/users/2") == 1

    host = f"127.0.0.1:{p.port}"
    assert purge(p, {"key": f"GET {host}/items/1"}) == (200, {"purged": 1})
    assert get(p.port, "/items/1")[1]["cache-status"] == "portico; fwd=miss; stored"
    assert purge(p, {"prefix": "/users/"}) == (200, {"purged": 2})
    assert purge(p, {"all": True}) == (200, {"purged": 2})
    assert purge(p, {"tag": "users"}) == (200, {"purged": 0})
    assert p.metric("portico_cache_purged_total") == 6
    assert p.metric("portico_cache_entries") == 0

    assert purge(p, {"everything": True})[0] == 400
    assert purge(p, {"key": ""})[0] == 400
    assert p.admin("/cache/purge")[0] == 405


def test_never_stores_cookies_private_or_errors(portico, origin):
    p = portico(upstreams={"o": [origin.address]}, routes=[cache_route({"ttl": "60s"})])
    for path, query in [("/cookie", "h=Set-Cookie:a=b"), ("/private", "h=Cache-Control:private"),
                        ("/nostore", "h=Cache-Control:no-store"), ("/error", "status=500"),
                        ("/unavailable", "status=503")]:
        for _ in range(3):
            get(p.port, f"{path}?{query}")
        assert origin.count(path) == 3, path
    # credentials without a consumer in the key: the answer is not kept for anyone
    get(p.port, "/secret", {"Authorization": "Bearer a"})
    status, h, body = get(p.port, "/secret")
    assert body == b"/secret #2 " and h["cache-status"] == "portico; fwd=miss; stored"


def test_no_gzip_for_a_client_that_did_not_ask(portico, origin):
    # compression after the cache: the cache stores what compression made, per Accept-Encoding
    p = portico(upstreams={"o": [origin.address]}, routes=[cache_route(
        {"ttl": "60s"},
        plugins_after=[{"name": "compression", "config": {"min_length": 10,
                                                          "types": ["text/plain"]}}])])
    path = "/big?pad=5000"
    status, h, body = get(p.port, path, {"Accept-Encoding": "gzip"})
    assert h["content-encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"/big #1 ")
    status, h, body = get(p.port, path)  # no Accept-Encoding
    assert "content-encoding" not in h
    assert body.startswith(b"/big #")
    status, h, body = get(p.port, path)
    assert h["cache-status"].startswith("portico; hit") and "content-encoding" not in h
    status, h, body = get(p.port, path, {"Accept-Encoding": "gzip"})
    assert h["cache-status"].startswith("portico; hit")
    assert h["content-encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"/big #1 ")
    assert origin.count("/big") == 2  # one fetch per variant


def test_hits_304s_and_http2(portico, origin):
    p = portico(upstreams={"o": [origin.address]}, routes=[cache_route({"ttl": "60s"})])
    status, h, body = conftest.curl(p.port, "/e?h=ETag:\"v1\"")
    assert (status, h["cache-status"]) == (200, "portico; fwd=miss; stored")
    status, h, body = conftest.curl(p.port, "/e?h=ETag:\"v1\"", http2=True)
    assert (status, body) == (200, b"/e #1 ")
    assert h["cache-status"].startswith("portico; hit; ttl=")
    assert h["etag"] == '"v1"' and "age" in h and h["content-length"] == "6"
    status, h, body = conftest.curl(p.port, "/e?h=ETag:\"v1\"", headers=['If-None-Match: "v1"'])
    assert (status, body, h["etag"]) == (304, b"", '"v1"')
    status, h, _ = conftest.curl(p.port, "/e?h=ETag:\"v1\"", method="HEAD")
    assert status == 200 and h["cache-status"].startswith("portico; hit")
    assert origin.count("/e") == 1


def test_caches_a_flows_composed_answer(portico, origin):
    route = {"name": "composed", "match": {"path": "/composed"},
             "flow": {"calls": [{"name": "a", "upstream": "o", "path": "/part-a"}]},
             "plugins": [{"name": "cache", "config": {"ttl": "60s"}}]}
    p = portico(upstreams={"o": [origin.address]}, routes=[route])
    first = get(p.port, "/composed")
    second = get(p.port, "/composed")
    assert first[0] == second[0] == 200
    assert second[1]["cache-status"].startswith("portico; hit")
    assert first[2] == second[2]
    assert origin.count("/part-a") == 1


def test_config_errors(tmp_path):
    cfg = conftest.base_config(1, 2, {"o": ["127.0.0.1:1"]}, [cache_route(
        {"statuses": [200, 502], "methods": ["GET", "POST"], "ttl": "soon"})])
    code, out = conftest.validate(cfg, tmp_path)
    assert code != 0
    for expected in ["statuses[1]: must be a status from 200 to 499", "\"POST\": only GET and HEAD",
                     "config.ttl"]:
        assert expected in out, out
