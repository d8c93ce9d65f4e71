"""A real HTTP endpoint for notification tests: records JSON POSTs on 127.0.0.1.

``fail`` answers 500 that many times; ``gate`` (when set) holds every request
until it is released; ``stop`` closes it (a dead endpoint), ``start(port)``
brings it back on the same port.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Endpoint:
    """An HTTP server that records JSON POSTs. ``fail`` answers 500 that many times;
    ``gate`` (when set) holds every request until it is released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages: list[dict[str, Any]] = []
        self.hits = 0  # requests that arrived (whatever the answer)
        self.fail = 0
        self.gate: threading.Event | None = None
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self, port: int = 0) -> int:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint.lock:
                    endpoint.hits += 1
                    gate = endpoint.gate
                if gate is not None:
                    gate.wait(10)
                with endpoint.lock:
                    failing = endpoint.fail > 0
                    endpoint.fail -= failing
                    if not failing:
                        endpoint.pages.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name="endpoint"
        )
        self.thread.start()
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self.server is not None and self.thread is not None:
            self.server.shutdown()
            self.server.server_close()  # joins the request threads
            self.thread.join()
            self.server = self.thread = None

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.pages)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
