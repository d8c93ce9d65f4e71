"""MetricsServer: serves an Exposition over HTTP until ``close()``.

A stdlib threaded WSGI server: one listener thread, one short-lived thread
per request. Unlike ``prometheus_client.start_http_server`` it can be
stopped, its request threads time out on a stalled client and are joined
on close, and a failing scrape is logged here rather than printed.

``GET`` scrapes take the fast path (``Exposition.render``), gzip-compressed
at level 1 when asked (level 9, prometheus_client's, costs ~100 ms for
600 kB of metrics and saves little more); anything else — ``?name[]=``
filters, ``OPTIONS``, other methods — goes to prometheus_client's own WSGI
app over the private registry.

This module must not build metric families nor read the View.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import gzip_accepted

from sentinel.exporter.exposition import Exposition
from sentinel.model.view import View

log = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1"
DEFAULT_PORT = 9464  # the port the OpenTelemetry Prometheus exporter uses too

_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    timeout = 10.0  # a stalled client cannot hold a request thread (and close()) for longer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    # Request threads are joined by server_close() (block_on_close), and are
    # daemon threads so a stuck one never blocks interpreter exit.
    daemon_threads = True
    block_on_close = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """A running HTTP exporter. ``port`` is the bound port (useful with port 0)."""

    def __init__(self, httpd: _Server, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 15.0) -> None:
        """Stop listening, wait for scrapes in progress, join the threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()  # returns once serve_forever has exited
        self._httpd.server_close()  # closes the socket and joins request threads
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    exposition: Exposition,
    *,
    port: int = DEFAULT_PORT,
    addr: str = DEFAULT_ADDR,
    compress: bool = True,
) -> MetricsServer:
    """Listen on ``addr:port`` (port 0: any free port) and serve from a thread."""
    server_class = _Server6 if ":" in addr else _Server
    app = _logged(_App(exposition, compress=compress))
    httpd = make_server(addr, port, app, server_class, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sentinel-exporter"
    )
    thread.daemon = True
    thread.start()
    return MetricsServer(httpd, thread)


def start(
    view: Callable[[], View],
    *,
    port: int = DEFAULT_PORT,
    addr: str = DEFAULT_ADDR,
    process_metrics: bool = True,
) -> MetricsServer:
    """The daemon's entry point: export ``view()`` on ``addr:port`` until ``close()``."""
    return serve(Exposition(view, process_metrics=process_metrics), port=port, addr=addr)


class _App:
    def __init__(self, exposition: Exposition, *, compress: bool) -> None:
        self._exposition = exposition
        self._compress = compress
        self._standard: _WSGIApp = make_wsgi_app(
            exposition.registry, disable_compression=not compress
        )

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if (
            environ["REQUEST_METHOD"] != "GET"
            or "name[]" in parse_qs(environ.get("QUERY_STRING", ""))
            or environ.get("PATH_INFO") == "/favicon.ico"
        ):
            return self._standard(environ, start_response)
        body, content_type = self._exposition.render(environ.get("HTTP_ACCEPT"))
        headers = [("Content-Type", content_type)]
        if self._compress and gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body, compresslevel=1)  # zlib releases the GIL meanwhile
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]


def _logged(app: _WSGIApp) -> _WSGIApp:
    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception:  # one bad scrape is logged and answered 500; the server goes on
            log.exception("scrape of %s failed", environ.get("PATH_INFO", "?"))
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"scrape failed; see the sentinel log\n"]

    return logged
