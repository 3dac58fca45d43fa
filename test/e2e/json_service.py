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
import threading
import time
from urllib.parse import parse_qs, urlsplit

import http_service


class JsonService:
    def __init__(self, name="svc", tls_context=None):
        self.name = name
        self.requests = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        service = self

        class Handler(http_service.Handler):
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

        self.service = http_service.Service(Handler, tls_context)
        self.server, self.port, self.address = (self.service.server, self.service.port,
                                                self.service.address)

    def stop(self):
        self.service.stop()
