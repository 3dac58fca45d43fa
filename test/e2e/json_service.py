"""A JSON backend for composition tests (standard library only), on 127.0.0.1.

Every answer is JSON. Query parameters shape it: `delay=MS` waits first (`delay=rand:MAX` a
random 0..MAX ms), `status=N` answers N. Paths:

  /items/N        {"items": [{"sku": "s0"}, ... N of them]}
  /item/SKU       {"sku": SKU, "price": len(SKU)}
  /p/...          {NAME: {"path": PATH}} (the same bytes for the same path)
  /text           a text/plain answer
  /badjson        Content-Type application/json, body that is not JSON
  anything else   {NAME: {"path", "query", "headers" (lower-case), "body" (parsed JSON or text)}}

It counts requests and the most it ever had in flight at once.
"""
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # socketserver's 5 drops SYNs when calls connect at once
    daemon_threads = True


class JsonService:
    def __init__(self, name="svc", tls_context=None):
        self.name = name
        self.requests = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # Head and body leave in two writes: without this, Nagle holds the body until
                # the peer's delayed ACK (40 ms).
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self):
                with service.lock:
                    service.in_flight += 1
                    service.max_in_flight = max(service.max_in_flight, service.in_flight)
                try:
                    self._answer()
                finally:
                    with service.lock:
                        service.in_flight -= 1

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                service.requests.append({"method": self.command, "path": url.path,
                                         "query": query, "headers": headers, "body": raw})
                delay = query.get("delay", "0")
                if delay.startswith("rand:"):
                    delay = random.uniform(0, float(delay[5:]))
                time.sleep(float(delay) / 1000)
                status = int(query.get("status", "200"))
                ctype = "application/json"
                if url.path.startswith("/items/"):
                    n = int(url.path.split("/")[2])
                    body = json.dumps({"items": [{"sku": f"s{i}"} for i in range(n)]})
                elif url.path.startswith("/item/"):
                    sku = url.path.split("/")[2]
                    body = json.dumps({"sku": sku, "price": len(sku)})
                elif url.path.startswith("/p/"):
                    body = json.dumps({service.name: {"path": url.path}})
                elif url.path == "/text":
                    body, ctype = "plain words", "text/plain"
                elif url.path == "/badjson":
                    body = "{not json"
                else:
                    try:
                        parsed = json.loads(raw) if raw else None
                    except ValueError:
                        parsed = raw.decode(errors="replace")
                    body = json.dumps({service.name: {"path": url.path, "query": query,
                                                      "headers": headers, "body": parsed}})
                data = b"" if status in (204, 304) else body.encode()
                self.send_response(status)
                if status not in (204, 304):
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
