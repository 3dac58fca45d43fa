"""A small blocking HTTP/2 client on python3-h2, for tests that need frame-level control:
concurrent streams, resets, windows, GOAWAY, hand-crafted abusive frames."""
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class Response:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.trailers = {}
        self.ended = False
        self.reset = None  # error code when the server reset the stream
        self.data_times = []  # arrival time of each DATA frame


class H2Client:
    def __init__(self, port, tls_context=None, server_name=None, settings=None, timeout=10):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_context is not None:
            tls_context.set_alpn_protocols(["h2"])
            raw = tls_context.wrap_socket(raw, server_hostname=server_name)
            assert raw.selected_alpn_protocol() == "h2"
        self.sock = raw
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.responses = {}
        self.goaway = None  # (error_code, last_stream_id)
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=None, body=None, end=True, authority="gw.test"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", authority)] + list(headers or [])
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.responses[sid] = Response()
        self.flush()
        return sid

    def send_body(self, sid, data, end=False, timeout=10.0):
        """Sends `data` in frames the peer's window and frame size allow, waiting for both."""
        deadline = time.monotonic() + timeout
        while data:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                assert time.monotonic() < deadline, "flow-control window stayed shut"
                self.pump(0.2)
                continue
            self.conn.send_data(sid, data[:room])
            data = data[room:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def pump(self, timeout=5.0):
        """Reads once (up to `timeout`) and handles the events; False when the connection ended."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        now = time.monotonic()
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for e in events:
            r = self.responses.get(getattr(e, "stream_id", None))
            if isinstance(e, h2.events.ResponseReceived):
                r.headers = dict(e.headers)
                r.status = int(r.headers[":status"])
            elif isinstance(e, h2.events.DataReceived):
                r.body += e.data
                r.data_times.append(now)
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, h2.events.TrailersReceived):
                r.trailers = dict(e.headers)
            elif isinstance(e, h2.events.StreamEnded):
                r.ended = True
            elif isinstance(e, h2.events.StreamReset) and r is not None:
                r.reset = e.error_code
                r.ended = True
            elif isinstance(e, h2.events.ConnectionTerminated):
                self.goaway = (e.error_code, e.last_stream_id)
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def wait(self, sid, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not self.responses[sid].ended and time.monotonic() < deadline:
            if not self.pump(min(0.5, max(0.01, deadline - time.monotonic()))):
                break
        return self.responses[sid]

    def wait_closed(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(0.2):
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
