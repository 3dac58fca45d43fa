"""Real etcd members on 127.0.0.1 for the suite (Debian's etcd-server): a cluster of one or
more, started on free ports, stopped and restarted by PID, with a small v3 JSON client."""
import base64
import json
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import free_port


def b64(text):
    return base64.b64encode(text.encode()).decode()


class EtcdCluster:
    def __init__(self, workdir, members=1, tls=None):
        """`tls`: {"cert", "key", "ca", "client_cert", "client_key"}: clients over https with
        client certificates (peers stay on http: loopback)."""
        self.workdir = Path(workdir)
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.names = [f"m{i}" for i in range(members)]
        self.procs = {}
        self.logs = {}
        # A member that cannot bind (a port taken between free_port() and etcd's bind) exits at
        # once: start again on new ports and a new data directory rather than wait it out.
        for attempt in range(3):
            self.data = self.workdir / f"etcd-data-{attempt}"
            self.client = {n: free_port() for n in self.names}
            self.peer = {n: free_port() for n in self.names}
            for n in self.names:
                self.start(n, new=True)
            try:
                self.wait_healthy()
                return
            except AssertionError:
                if attempt == 2 or all(p.poll() is None for p in self.procs.values()):
                    self.stop_all()
                    raise
                self.stop_all()

    @property
    def endpoints(self):
        return [f"{self.scheme}://127.0.0.1:{self.client[n]}" for n in self.names]

    def start(self, name, new=False):
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer[n]}" for n in self.names)
        self.logs[name] = open(self.workdir / f"etcd-{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            ["etcd", "--name", name, "--data-dir", str(self.data / name),
             "--listen-client-urls", f"{self.scheme}://127.0.0.1:{self.client[name]}",
             "--advertise-client-urls", f"{self.scheme}://127.0.0.1:{self.client[name]}",
             *(["--cert-file", self.tls["cert"], "--key-file", self.tls["key"],
                "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"] if self.tls else []),
             "--listen-peer-urls", f"http://127.0.0.1:{self.peer[name]}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[name]}",
             "--initial-cluster", cluster, "--initial-cluster-state", "new" if new else "existing",
             "--heartbeat-interval", "50", "--election-timeout", "500"],
            stdout=self.logs[name], stderr=subprocess.STDOUT)

    def stop(self, name):
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if name in self.logs:
            self.logs[name].close()

    def stop_all(self):
        for n in self.names:
            self.stop(n)

    def call(self, path, body, member=None):
        port = self.client[member or self.names[0]]
        req = urllib.request.Request(f"{self.scheme}://127.0.0.1:{port}{path}",
                                     data=json.dumps(body).encode(), method="POST")
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls["ca"])
            context.check_hostname = False
            context.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        with urllib.request.urlopen(req, timeout=5, context=context) as r:
            return json.loads(r.read())

    def leader(self):
        """The name of the member that leads now (None when none answers)."""
        for n in self.names:
            if self.procs[n].poll() is not None:
                continue
            try:
                status = self.call("/v3/maintenance/status", {}, n)
            except OSError:
                continue
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return n
        return None

    def kill(self, name):
        self.procs[name].kill()
        self.procs[name].wait()
        self.logs[name].close()

    def put(self, key, value):
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.names:
                try:
                    self.call("/v3/kv/range", {"key": b64("health")}, n)
                    return
                except OSError:
                    pass
            if all(p.poll() is not None for p in self.procs.values()):
                break
            time.sleep(0.1)
        raise AssertionError("etcd did not start:\n" + self.log_tails())

    def log_tails(self, lines=15):
        """The end of each member's log, with its exit status, for a failure's message."""
        out = []
        for n in self.names:
            status = self.procs[n].poll() if n in self.procs else None
            try:
                text = (self.workdir / f"etcd-{n}.log").read_text(errors="replace")
            except OSError:
                text = ""
            tail = "\n".join(text.splitlines()[-lines:])
            out.append(f"--- {n} (exit status {status}) ---\n{tail}")
        return "\n".join(out)
