"""A real redis-server on 127.0.0.1 for the suite: started on a free port, stopped by PID."""
import socket
import subprocess
import time
from pathlib import Path

from conftest import recv_until


class RedisServer:
    def __init__(self, workdir, port, extra=None):
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra = extra or []
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no", *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.ping():
                return
            time.sleep(0.02)
        self.log.flush()
        tail = (self.workdir / f"redis-{self.port}.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"redis-server did not start (exit status {self.proc.poll()}):\n{tail}")

    def ping(self):
        try:
            reply = self.command("PING")
            return reply == b"+PONG" or reply.startswith(b"-NOAUTH")  # up, with a password
        except OSError:
            return False

    def command(self, *args):
        """One command, RESP-encoded; returns the raw first line of the reply."""
        payload = f"*{len(args)}\r\n".encode()
        for a in args:
            a = str(a).encode()
            payload += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload)
            data = recv_until(s, b"\r\n")
        return data.split(b"\r\n", 1)[0]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
        self.proc = None
