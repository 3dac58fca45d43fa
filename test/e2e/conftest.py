"""Shared fixtures: a real `portico` binary on 127.0.0.1 with recording upstreams.

Every process started here is stopped by PID at teardown; every wait is bounded.
"""
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from upstream_server import Upstream

REPO = Path(__file__).resolve().parents[2]
PORTICO_BIN = os.environ.get("PORTICO_BIN", str(REPO / "build/release/portico"))
SLOW = os.environ.get("PORTICO_SLOW") == "1"  # sanitizer builds: scale waits


# Every test is bounded in time: one that hangs fails with every thread's stack printed
# (pytest-timeout) instead of running the whole suite into CI's limit with no trace. The
# slowest test takes ~30 s on 2 cores.
TEST_TIMEOUT_S = 120 * (4 if SLOW else 1)


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: large transfers or load, skipped under sanitizers")
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError("the e2e tests need pytest-timeout: run scripts/install-deps.sh "
                                "(Debian's python3-pytest-timeout)")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if outcome.get_result().failed:
        item.portico_failed = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    """A passed test's directory goes once its processes are stopped: the cluster tests' etcd
    members preallocate 64 MiB of WAL each, and a whole run would otherwise leave ~1.3 GB
    behind. A failed test's directory stays, logs and all."""
    outcome = yield
    failed = getattr(item, "portico_failed", False) or outcome.excinfo is not None
    tmp = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
    if tmp is not None and not failed:
        shutil.rmtree(tmp, ignore_errors=True)


_RNG = random.Random(os.getpid())


_ISSUED_PORTS = set()


def _bound_socket():
    """A socket bound to a random port below the kernel's ephemeral range, never one this run
    handed out before: two free_port() calls before either server binds (two nodes, a listener
    and its admin port) could otherwise get the same port."""
    for _ in range(200):
        port = _RNG.randrange(20000, 32000)
        if port in _ISSUED_PORTS:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        _ISSUED_PORTS.add(port)
        return s
    raise RuntimeError("no free port")


def free_port():
    """A port for Portico to listen on. Chosen below the kernel's ephemeral range, so that no
    outgoing connection (Portico's own, to its upstreams) can take it between now and the bind."""
    with _bound_socket() as s:
        return s.getsockname()[1]


_HELD_PORTS = []


def refused_port():
    """A port nothing listens on, for the whole run: bound here without listen(), so connecting
    to it is refused and free_port() never hands it to a server started later (a "dead"
    target picked with free_port() could become the gateway's own admin port)."""
    s = _bound_socket()
    _HELD_PORTS.append(s)
    return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """`what` names the condition; a callable is called at the timeout, to say what was seen."""
    deadline = time.monotonic() + timeout * (4 if SLOW else 1)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def base_config(port, admin_port, upstreams, routes, server=None, plugins=None):
    """A config as a dict; JSON is valid YAML, so tests write it with json.dumps."""
    cfg = {
        "version": 1,
        "server": {"workers": 2, "admin": {"listen": f"127.0.0.1:{admin_port}"},
                   "drain_timeout": "10s", "watch_config": False},
        "listeners": [{"name": "main", "listen": f"127.0.0.1:{port}"}],
        "upstreams": [],
        "routes": routes,
    }
    for name, spec in upstreams.items():
        if isinstance(spec, list):
            spec = {"targets": spec}
        cfg["upstreams"].append({"name": name, **spec})
    if server:
        cfg["server"].update(server)
    if plugins:
        cfg["plugins"] = plugins
    return cfg


class Portico:
    def __init__(self, workdir, config, env=None):
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "portico.yaml"
        self.log_path = self.workdir / "portico.log"
        self.port = int(config["listeners"][0]["listen"].rsplit(":", 1)[1])
        self.admin_port = int(config["server"]["admin"]["listen"].rsplit(":", 1)[1])
        self.write_config(config)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PORTICO_BIN, "run", "-c", str(self.config_path)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        wait_for(self.ready, what="portico /readyz")

    def write_config(self, config):
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.rename(self.config_path)

    def admin(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("portico exited:\n" + self.log_path.read_text())
        try:
            return self.admin("/readyz")[0] == 200
        except OSError:
            return False

    def version(self):
        return json.loads(self.admin("/config")[1])["version"]

    def reload(self, config, expect_ok=True):
        before = self.metric("portico_config_reloads_total") + \
            self.metric("portico_config_reload_failures_total")
        self.write_config(config)
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.metric("portico_config_reloads_total") +
                 self.metric("portico_config_reload_failures_total") > before, what="reload")

    def metrics(self):
        return self.admin("/metrics")[1]

    def settled_metrics(self):
        """/metrics once no request is in flight: a request is counted when it ends, just
        after its last byte went out, so a client can be a moment ahead of the counters."""
        def in_flight():
            text = self.metrics()
            return sum(float(line.split()[-1]) for line in text.splitlines()
                       if line.startswith("portico_requests_in_flight{")), text
        deadline = time.monotonic() + (8 if SLOW else 2)
        busy, text = in_flight()
        while busy and time.monotonic() < deadline:
            time.sleep(0.01)
            busy, text = in_flight()
        return text

    def metric(self, name, labels=""):
        key = name + ("{" + labels + "}" if labels else "")
        for line in self.metrics().splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def logs(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def upstreams():
    started = []

    def make(name="upstream"):
        u = Upstream(name)
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


@pytest.fixture
def portico(tmp_path):
    started = []

    def make(upstreams=None, routes=None, server=None, plugins=None, config=None, env=None):
        if config is None:
            config = base_config(free_port(), free_port(), upstreams or {}, routes or [],
                                 server, plugins)
        try:
            p = Portico(tmp_path, config, env)
        except AssertionError as e:
            # Another process took a port between free_port()'s check and Portico's bind:
            # once, with fresh ports for the listener and the admin listener.
            if "Address already in use" not in str(e) or isinstance(config, str):
                raise
            config["listeners"][0]["listen"] = f"127.0.0.1:{free_port()}"
            config["server"]["admin"]["listen"] = f"127.0.0.1:{free_port()}"
            p = Portico(tmp_path, config, env)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()
    for p in started:
        # Under the asan build, any sanitizer report (leaks at exit included) fails the test.
        logs = p.logs()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in logs, logs[-4000:]


def validate(config, directory):
    """`portico validate` on `config` (a dict, written as JSON): (exit code, all output)."""
    path = Path(directory) / "validate.yaml"
    path.write_text(json.dumps(config, indent=1))
    r = subprocess.run([PORTICO_BIN, "validate", "-c", str(path)], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def curl(port, path, http2=False, method=None, headers=(), data=None, content_type=None):
    """One request with curl (HTTP/1.1, or HTTP/2 with prior knowledge; `data` sent as the
    body): (status, headers (lower-case names, repeated ones joined by ", "), body bytes)."""
    args = ["curl", "-sS", "--max-time", "10",
            "--http2-prior-knowledge" if http2 else "--http1.1"]
    if method == "HEAD":
        args += ["--head"]  # prints the head; -X HEAD would wait for a body
    else:
        args += ["-D", "-"] + (["-X", method] if method else [])
    for h in headers:
        args += ["-H", h]
    if data is not None:
        args += ["--data-binary", "@-"]
        if content_type:
            args += ["-H", f"Content-Type: {content_type}"]
    r = subprocess.run(args + [f"http://127.0.0.1:{port}{path}"], capture_output=True,
                       input=data, timeout=20)
    assert r.returncode == 0, r.stderr
    status, header_list, body = split_curl_output(r.stdout)
    fields = {}
    for k, v in header_list:
        fields.setdefault(k, []).append(v)
    return status, {k: ", ".join(v) for k, v in fields.items()}, body


def split_curl_output(output):
    """curl -D - output: (status, [(lower-case name, value)...] in order, body bytes)."""
    head, _, body = output.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    fields = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields.append((k.strip().lower(), v.strip()))
    return int(lines[0].split()[1]), fields, body


def request(port, method, path, headers=None, body=None, timeout=10):
    """One request on a fresh connection: (status, headers dict (lower-case), body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def raw(port, data, timeout=3.0):
    """Sends raw bytes and reads until the server closes or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def statuses(response_bytes):
    """Status codes of every response in a byte stream (pipelining)."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", response_bytes)]


def sent_while_stopped(p, send):
    """Runs send() while Portico is stopped (SIGSTOP), so that all it sends reaches a worker as
    one epoll event."""
    p.proc.send_signal(signal.SIGSTOP)
    try:
        send()
        time.sleep(0.05)
    finally:
        p.proc.send_signal(signal.SIGCONT)


def recv_until(s, marker):
    """What a socket (plain or TLS) receives up to the first `marker`, with whatever came after
    it in the same read; what it has if the peer closes first."""
    data = b""
    while marker not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_until_closed(s):
    """Everything a socket (plain or TLS) receives until the peer closes, and the seconds that
    took. A TLS peer closing without close_notify counts as closed; an alert fails."""
    start = time.monotonic()
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out, time.monotonic() - start


def pipelined_answers(response_bytes):
    """(head, body) of every answer in a byte stream of Content-Length answers, in order; fails
    on a truncated one."""
    answers = []
    rest = response_bytes
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, "a truncated head"
        length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
        body, rest = rest[:length], rest[length:]
        assert len(body) == length, "a truncated body"
        answers.append((head, body))
    return answers
