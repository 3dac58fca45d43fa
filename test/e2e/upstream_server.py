"""A recording HTTP/1.1 upstream for end-to-end tests (standard library only).

It parses requests itself (Content-Length and chunked bodies), records every request it gets
and every connection it accepts, and behaves according to the request path:

  /status/NNN          answer NNN
  /sleep/MS            wait MS milliseconds, then answer 200
  /close               close the connection without answering
  /bytes/N             N bytes of body with Content-Length, streamed in 1 MiB pieces
  /chunked-bytes/N     N bytes of body, chunked
  /chunked             a small chunked body in three chunks
  /trailers            a chunked body whose trailer section holds a checksum, a Connection and
                       a Content-Length field
  /nolength            a body delimited by closing the connection
  /stream/N/MS         N chunked events, one every MS milliseconds
  /health              answer `health_status` (200 unless a test changes it)
  anything else        200 with a JSON description of the request (body length, not the body)

`forced_status`, when a test sets it, answers every request but /health with that status.
"""
import json
import socket
import threading
import time


class Request:
    def __init__(self, method, target, version, headers, body_len, body_prefix, raw_head):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value)
        self.body_len = body_len
        self.body_prefix = body_prefix
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError
        self.buf += data

    def read_until(self, marker, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("head too large")
            self.fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact_count(self, n, keep):
        """Reads n bytes, returns up to `keep` of them."""
        kept = b""
        while n > 0:
            if not self.buf:
                self.fill()
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            n -= len(take)
            if len(kept) < keep:
                kept += take[: keep - len(kept)]
        return kept


class Upstream:
    def __init__(self, name="upstream", port=0):
        self.name = name
        self.requests = []
        self.connections = 0
        self.health_status = 200
        self.forced_status = None
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.open_sockets = set()
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for s in list(self.open_sockets):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def close_idle_connections(self):
        """Closes every open connection (as an upstream with a short keep-alive would)."""
        with self.lock:
            for s in list(self.open_sockets):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open_sockets.add(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        conn = _Conn(s)
        try:
            while True:
                if not self._one(conn):
                    break
        except (EOFError, OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.open_sockets.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _one(self, conn):
        raw = conn.read_until(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k, v.strip()))
        req = Request(method, target, version, headers, 0, b"", raw)
        te = req.header("transfer-encoding")
        if te and "chunked" in te.lower():
            total, prefix = 0, b""
            while True:
                size_line = conn.read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while conn.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                prefix += conn.read_exact_count(size, max(0, 65536 - len(prefix)))
                total += size
                conn.read_exact_count(2, 0)
            req.body_len, req.body_prefix = total, prefix
        elif req.header("content-length"):
            n = int(req.header("content-length"))
            req.body_prefix = conn.read_exact_count(n, 65536)
            req.body_len = n
        with self.lock:
            self.requests.append(req)
        return self._respond(conn.sock, req)

    def _respond(self, s, req):
        path = req.target.split("?")[0]
        parts = path.strip("/").split("/")
        head_only = req.method == "HEAD"
        if parts[0] == "close":
            return False
        if parts[0] == "health":
            parts = ["status", str(self.health_status)]
        elif self.forced_status:
            parts = ["status", str(self.forced_status)]
        if parts[0] == "sleep":
            time.sleep(int(parts[1]) / 1000.0)
        if parts[0] == "status":
            code = int(parts[1])
            body = b"" if code in (204, 304) else json.dumps({"status": code}).encode()
            extra = "" if code in (204, 304) else f"Content-Length: {len(body)}\r\n"
            s.sendall(f"HTTP/1.1 {code} X\r\n{extra}X-Upstream: {self.name}\r\n\r\n".encode()
                      + (b"" if head_only else body))
            return True
        if parts[0] == "bytes":
            n = int(parts[1])
            s.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
            if not head_only:
                chunk = b"x" * (1 << 20)
                while n > 0:
                    piece = chunk[: min(n, len(chunk))]
                    s.sendall(piece)
                    n -= len(piece)
            return True
        if parts[0] == "chunked-bytes":
            n = int(parts[1])
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"y" * (1 << 20)
            while n > 0:
                piece = chunk[: min(n, len(chunk))]
                s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                n -= len(piece)
            s.sendall(b"0\r\n\r\n")
            return True
        if parts[0] == "chunked":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Upstream: "
                      + self.name.encode() + b"\r\n\r\n5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
            return True
        if parts[0] == "trailers":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                      b"X-Checksum: 42\r\nConnection: close\r\nContent-Length: 5\r\n\r\n")
            return True
        if parts[0] == "stream":
            count, every = int(parts[1]), int(parts[2])
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(count):
                event = f"data: {i} {time.time():.6f}\n\n".encode()
                s.sendall(b"%x\r\n" % len(event) + event + b"\r\n")
                time.sleep(every / 1000.0)
            s.sendall(b"0\r\n\r\n")
            return True
        if parts[0] == "nolength":
            s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close body")
            return False
        body = json.dumps({
            "upstream": self.name,
            "method": req.method,
            "target": req.target,
            "headers": req.headers,
            "body_len": req.body_len,
        }).encode()
        s.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nX-Upstream: {self.name}\r\n\r\n".encode()
                  + (b"" if head_only else body))
        return True
