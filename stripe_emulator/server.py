"""The HTTP front: HTTP/1.1 with keep-alive, TCP_NODELAY, one thread per connection.

Each response is written with a single ``send`` (status line, headers and body together), so
no small-packet delays arise. Webhooks for the events a request produced are queued only after
its response has been written.
"""

from __future__ import annotations

import socket
import struct
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import urlsplit

from .control import Control
from .emulator import ApiResult, Emulator

MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripe-emulator/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this many seconds

    server: "EmulatorServer"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet; bodies never logged
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._write(ApiResult(413, b'{"error":{"type":"invalid_request_error",'
                                       b'"message":"Request body too large."}}'))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        emulator = self.server.emulator
        if path.startswith("/v1/"):
            result = emulator.handle_api(method, path, query, self.headers, body)
        elif path.startswith("/_emulator/"):
            result = self.server.control.handle(method, path, query, self.headers, body)
        else:
            result = ApiResult(404, b'{"error":{"type":"invalid_request_error",'
                                    b'"message":"Unrecognized request URL."}}')
        emulator.webhooks.announce(len(result.events))
        if result.refuse:
            self.close_connection = True
            self._reset_connection()
        elif result.cut:
            self.close_connection = True
            self._write(result, cut=True)
            self._reset_connection()
        elif result.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            self._write(result)
        emulator.webhooks.enqueue(result.events, announced=True)

    def _reset_connection(self) -> None:
        """Close the socket now with SO_LINGER 0: the kernel sends RST instead of FIN, so the
        client sees "connection reset", as close to a refused connection as a server can get
        once it has accepted. ``finish()`` then finds the socket already closed."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # the makefile reference would otherwise delay the real close
        except OSError:
            pass
        self.connection.close()

    def _write(self, result: ApiResult, *, cut: bool = False) -> None:
        """The answer; with ``cut``, its head (the full Content-Length) and only half its body."""
        try:
            reason = HTTPStatus(result.status).phrase
        except ValueError:
            reason = ""
        headers = {"Content-Type": "application/json", **result.headers}
        lines = [f"HTTP/1.1 {result.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(result.body)}")
        lines.append("Connection: close" if self.close_connection else "Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (result.body[:len(result.body) // 2] if cut else result.body))
            if cut:
                self.wfile.flush()
        except OSError:
            self.close_connection = True


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, emulator: Emulator, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), Handler)
        self.emulator = emulator
        self.control = Control(emulator)
        self._connections: set = set()
        self._conn_lock = threading.Lock()
        emulator.base_url = self.base_url

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def track(self, conn) -> None:
        with self._conn_lock:
            self._connections.add(conn)

    def untrack(self, conn) -> None:
        with self._conn_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ServerThread:
    """Run an :class:`EmulatorServer` in a daemon thread."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self.emulator = emulator
        self.server = EmulatorServer(emulator, port)
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "ServerThread":
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="stripe-emulator-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.emulator.faults.release_all()
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()
        self.emulator.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
