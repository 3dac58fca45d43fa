#!/usr/bin/env python3
"""Small demo upstream services for the quick start (standard library only).

Each service answers JSON describing the request it received, so what Portico forwards
(path rewrites, X-Forwarded-*, X-Request-Id, added headers) is visible with curl.
Usage: demo_services.py NAME:PORT [NAME:PORT ...]
"""
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(service):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            payload = {
                "service": service,
                "method": self.command,
                "path": self.path,
                "headers": {k: v for k, v in self.headers.items()},
                "body_bytes": len(body),
            }
            data = json.dumps(payload, indent=2).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

        def log_message(self, *args):
            pass

    return Handler


def main():
    servers = []
    for spec in sys.argv[1:] or ["users:9001", "orders:9002"]:
        name, port = spec.split(":")
        server = ThreadingHTTPServer(("127.0.0.1", int(port)), make_handler(name))
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.shutdown()


if __name__ == "__main__":
    main()
