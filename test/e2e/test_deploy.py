"""The deploy/ folder, exercised on loopback: three etcd members started from
deploy/etcd.default (etcd reads its ETCD_* variables; only what names a host — names, addresses,
directories, certificate files — is replaced), Redis from deploy/redis.conf, and two Portico
nodes from deploy/portico.yaml started as deploy/portico.service starts them (ExecStartPre
validates, ExecStart runs, SIGTERM stops), with the admin listener on TLS and etcd over mutual
TLS as the files say."""
import json
import os
import shlex
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from certs import Pki
from conftest import PORTICO_BIN, free_port, request, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ADMIN_TOKEN = "deploy-test-token-0123456789"

# What in etcd.default names a host or a file on it; every other setting is used as written.
ETCD_HOST_KEYS = {
    "ETCD_NAME", "ETCD_DATA_DIR", "ETCD_LISTEN_CLIENT_URLS", "ETCD_ADVERTISE_CLIENT_URLS",
    "ETCD_LISTEN_PEER_URLS", "ETCD_INITIAL_ADVERTISE_PEER_URLS", "ETCD_INITIAL_CLUSTER",
    "ETCD_CERT_FILE", "ETCD_KEY_FILE", "ETCD_TRUSTED_CA_FILE", "ETCD_PEER_CERT_FILE",
    "ETCD_PEER_KEY_FILE", "ETCD_PEER_TRUSTED_CA_FILE"}


def env_file(path):
    """KEY="VALUE" lines as systemd's EnvironmentFile and /etc/default read them."""
    out = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words:
            key, _, value = words[0].partition("=")
            out[key] = value
    return out


def unit_commands(path):
    """The unit's ExecStartPre and ExecStart command lines."""
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ExecStartPre", "ExecStart"):
            out[key] = shlex.split(value)
    return out


def on_loopback(command, config_path):
    """A unit's command with the installed paths replaced by the test's."""
    return [PORTICO_BIN if w == "/usr/local/bin/portico" else
            str(config_path) if w == "/etc/portico/portico.yaml" else w for w in command]


class Etcd:
    """Three members, each with deploy/etcd.default's variables."""

    def __init__(self, workdir, pki):
        self.settings = env_file(DEPLOY / "etcd.default")
        assert ETCD_HOST_KEYS <= set(self.settings), ETCD_HOST_KEYS - set(self.settings)
        cert, key = pki.issue("etcd-member", "etcd", dns=["localhost"], both=True)
        self.client = pki.issue("portico-etcd", "portico", client=True)
        self.ca = pki.ca_file
        names = ["etcd-1", "etcd-2", "etcd-3"]
        client = {n: free_port() for n in names}
        peer = {n: free_port() for n in names}
        self.endpoints = [f"https://localhost:{client[n]}" for n in names]
        cluster = ",".join(f"{n}=https://localhost:{peer[n]}" for n in names)
        self.procs, self.logs = [], []
        for n in names:
            env = {"PATH": os.environ["PATH"], **self.settings,
                   "ETCD_NAME": n, "ETCD_DATA_DIR": str(workdir / n),
                   "ETCD_LISTEN_CLIENT_URLS": f"https://127.0.0.1:{client[n]}",
                   "ETCD_ADVERTISE_CLIENT_URLS": f"https://localhost:{client[n]}",
                   "ETCD_LISTEN_PEER_URLS": f"https://127.0.0.1:{peer[n]}",
                   "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"https://localhost:{peer[n]}",
                   "ETCD_INITIAL_CLUSTER": cluster,
                   "ETCD_CERT_FILE": cert, "ETCD_KEY_FILE": key, "ETCD_TRUSTED_CA_FILE": self.ca,
                   "ETCD_PEER_CERT_FILE": cert, "ETCD_PEER_KEY_FILE": key,
                   "ETCD_PEER_TRUSTED_CA_FILE": self.ca}
            log = open(workdir / f"{n}.log", "ab")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(["etcd"], env=env, stdout=log,
                                               stderr=subprocess.STDOUT))
        context = ssl.create_default_context(cafile=self.ca)
        context.load_cert_chain(*self.client)

        def healthy():
            try:
                with urllib.request.urlopen(f"{self.endpoints[0]}/health", timeout=2,
                                            context=context) as r:
                    return json.loads(r.read()).get("health") == "true"
            except OSError:
                return False
        wait_for(healthy, timeout=30, interval=0.2, what="etcd from deploy/etcd.default")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()


class Node:
    """A Portico node from deploy/portico.yaml, started and stopped as the unit does."""

    def __init__(self, workdir, etcd, pki):
        workdir.mkdir()
        cfg = yaml.safe_load((DEPLOY / "portico.yaml").read_text())
        admin_cert, admin_key = pki.issue(f"admin-{workdir.name}", "portico-admin",
                                          dns=["localhost"])
        # Only addresses and files change: workers, tokens (from ${ADMIN_TOKEN}), prefix and
        # the rest are the file's.
        self.admin_port, self.port = free_port(), free_port()
        cfg["server"]["admin"]["listen"] = f"127.0.0.1:{self.admin_port}"
        cfg["server"]["admin"]["tls"]["certificates"] = [{"cert": admin_cert, "key": admin_key}]
        cfg["listeners"][0]["listen"] = f"127.0.0.1:{self.port}"
        store = cfg["store"]
        store["endpoints"] = etcd.endpoints
        store["tls"] = {"ca": etcd.ca, "cert": etcd.client[0], "key": etcd.client[1]}
        store["cache"] = str(workdir / "last-good.json")
        self.config_path = workdir / "portico.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg))
        self.env = {**os.environ, "ADMIN_TOKEN": ADMIN_TOKEN}
        commands = unit_commands(DEPLOY / "portico.service")
        pre = subprocess.run(on_loopback(commands["ExecStartPre"], self.config_path),
                             env=self.env, capture_output=True, text=True, timeout=30)
        assert pre.returncode == 0, pre.stdout + pre.stderr
        self.log = open(workdir / "portico.log", "wb")
        self.proc = subprocess.Popen(on_loopback(commands["ExecStart"], self.config_path),
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.context = ssl.create_default_context(cafile=pki.ca_file)
        wait_for(lambda: self.admin("GET", "/readyz")[0] == 200, timeout=15, what="readyz")

    def admin(self, method, path, body=None):
        req = urllib.request.Request(f"https://localhost:{self.admin_port}{path}", method=method,
                                     data=json.dumps(body).encode() if body else None)
        req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        if body:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5, context=self.context) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # KillSignal=SIGTERM: drains, then exits
            code = self.proc.wait(timeout=40)  # TimeoutStopSec=40
            assert code == 0, code
        self.log.close()


def test_the_deploy_files_run_a_cluster(tmp_path):
    pki = Pki(tmp_path / "pki")
    etcd = Etcd(tmp_path, pki)
    # Redis with deploy/redis.conf; only the address and directory are the test's (command-line
    # settings come after the file's).
    redis_port = free_port()
    redis_log = open(tmp_path / "redis.log", "ab")
    redis_proc = subprocess.Popen(
        ["redis-server", str(DEPLOY / "redis.conf"), "--port", str(redis_port),
         "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=redis_log, stderr=subprocess.STDOUT)
    nodes = []
    try:
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(redis_port), "PING"],
                                        capture_output=True, text=True).stdout.strip()
                 .startswith("NOAUTH"), timeout=10, what="redis (a password is required)")
        password = [line.split()[1] for line in (DEPLOY / "redis.conf").read_text().splitlines()
                    if line.startswith("requirepass ")][0]
        policy = subprocess.run(["redis-cli", "-p", str(redis_port), "--no-auth-warning", "-a",
                                 password, "CONFIG", "GET", "maxmemory-policy"],
                                capture_output=True, text=True).stdout.split()
        assert policy == ["maxmemory-policy", "volatile-ttl"], policy

        nodes = [Node(tmp_path / f"node{i}", etcd, pki) for i in range(2)]
        a, b = nodes
        # A route with a cluster rate limit on the deploy's Redis, written on one node.
        s, _ = a.admin("POST", "/admin/v1/routes", {
            "name": "limited", "match": {"path": "/limited"},
            "plugins": [
                {"name": "rate-limit", "config": {
                    "limits": [{"requests": 5, "per": "1m"}], "key": "route",
                    "backend": "redis", "on_backend_failure": "fail_closed",
                    "redis": {"address": f"127.0.0.1:{redis_port}", "password": password}}},
                {"name": "static-response", "config": {"status": 200, "body": "ok"}}]})
        assert s == 201
        wait_for(lambda: request(b.port, "GET", "/limited")[0] == 200, timeout=5,
                 what="the route on the other node")
        statuses = [request(p.port, "GET", "/limited")[0] for p in (a, b, a, b, a, b)]
        assert statuses.count(200) == 4 and statuses.count(429) == 2, statuses  # 5 in total
        s, listed = a.admin("GET", "/admin/v1/nodes")
        assert s == 200 and len(listed["data"]) == 2
        # A node restarted by the unit (Restart=on-failure) comes back with the same files.
        nodes[1].stop()
        nodes[1] = Node(tmp_path / "node2", etcd, pki)
        assert request(nodes[1].port, "GET", "/limited")[0] == 429
        assert Path(tmp_path / "node2" / "last-good.json").exists()
    finally:
        for n in nodes:
            n.stop()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        redis_log.close()
        etcd.stop()
