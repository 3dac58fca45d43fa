"""request-size-limit and concurrency-limit, through the real binary."""
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import base_config, free_port, raw, request, statuses, validate


def route_with(u, plugins, workers=2):
    return base_config(free_port(), free_port(), {"svc": [u.address]},
                       [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "svc",
                         "plugins": plugins}], server={"workers": workers})


def test_request_size_limit(portico, upstreams):
    u = upstreams()
    p = portico(config=route_with(u, [{"name": "request-size-limit",
                                       "config": {"max_body": "1KiB"}}]))
    assert request(p.port, "POST", "/ok", body=b"x" * 1024)[0] == 200
    status, _, body = request(p.port, "POST", "/big", body=b"x" * 1025)
    assert status == 413 and b"request body too large" in body
    # Chunked: refused once the body goes past the limit, never forwarded whole.
    chunked = (b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               b"200\r\n" + b"y" * 512 + b"\r\n") * 1
    chunked += b"300\r\n" + b"y" * 768 + b"\r\n0\r\n\r\n"
    assert statuses(raw(p.port, chunked)) == [413]
    assert [r.target for r in u.requests] == ["/ok"]


def test_concurrency_limit_queue_and_503(portico, upstreams):
    u = upstreams()
    p = portico(config=route_with(u, [{"name": "concurrency-limit",
                                       "config": {"max": 2, "queue": 2,
                                                  "queue_timeout": "1500ms"}}]))

    def slow(_):
        t0 = time.monotonic()
        status = request(p.port, "GET", "/sleep/600")[0]
        return status, time.monotonic() - t0

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(slow, range(6)))
    codes = sorted(s for s, _ in results)
    # 2 run at once, 2 wait for a slot (and then run), 2 find the queue full.
    assert codes == [200, 200, 200, 200, 503, 503], results
    waited = sorted(t for s, t in results if s == 200)
    assert waited[-1] >= 1.1  # the queued ones ran after a first one finished
    fast = [t for s, t in results if s == 503]
    assert max(fast) < 0.5  # refused at once, not after the queue timeout
    # All slots are free again.
    assert request(p.port, "GET", "/")[0] == 200


def test_concurrency_limit_queue_timeout(portico, upstreams):
    u = upstreams()
    p = portico(config=route_with(u, [{"name": "concurrency-limit",
                                       "config": {"max": 1, "queue": 5,
                                                  "queue_timeout": "200ms"}}]))
    holder = threading.Thread(target=lambda: request(p.port, "GET", "/sleep/1500"))
    holder.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    status, h, _ = request(p.port, "GET", "/")
    elapsed = time.monotonic() - t0
    assert status == 503 and h["retry-after"] == "1"
    assert 0.15 <= elapsed < 1.0
    holder.join()
    assert request(p.port, "GET", "/")[0] == 200


def test_traffic_filter_config_errors(tmp_path, upstreams):
    u = upstreams()
    for plugin, message in [
        ({"name": "request-size-limit", "config": {}}, "give max_body"),
        ({"name": "concurrency-limit", "config": {"queue": 3}}, "max"),
        ({"name": "quota", "config": {"limit": 5, "period": "week"}}, "unknown period"),
    ]:
        code, out = validate(route_with(u, [plugin]), tmp_path)
        assert code != 0 and message in out, (plugin, out)
