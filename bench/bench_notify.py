"""What the owner loop pays to page: ``Pager.submit`` with a dead, hanging or healthy endpoint.

    python bench/bench_notify.py

Each scenario submits 120 batches (an alert opening on 4 ranks of a new
job, then resolving: 240 pages, within the default queue of 256) to a real
``AppriseNotifier`` posting ``json://`` to 127.0.0.1, and reports p50 / p99
/ max of the ``submit`` call itself, then what was delivered by ``close``.
The goal: the same microseconds whatever the endpoint does — delivery
happens on the workers. The max includes GIL hand-offs to a worker busy
importing apprise (the first page) or posting. Also reported: what
importing the pager costs (apprise is not imported until the first page is
sent) and what that first import costs.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sentinel.actions.delivery import RetryPolicy
from sentinel.actions.notify import AppriseNotifier
from sentinel.actions.pager import Pager
from sentinel.model import AlertState, JobKey, Transition

BATCHES = 120
RANKS = 4


def transitions(job: str, firing: bool) -> list[Transition]:
    old, new = (AlertState.PENDING, AlertState.FIRING)
    if not firing:
        old, new = new, AlertState.INACTIVE
    return [
        Transition(
            "NaNLoss",
            JobKey(job, r),
            old,
            new,
            1.0,
            10,
            {"severity": "critical"},
            {"summary": "loss is nan", "advice": "lower the LR"},
            {"loss": float("nan")},
            ("notify",),
        )
        for r in range(RANKS)
    ]


def serve(hang: threading.Event | None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if hang is not None:
                hang.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def measure(name: str, port: int, after: Callable[[], None] = lambda: None) -> None:
    retry = RetryPolicy(initial=0.05, max_delay=0.5)
    pager = Pager(AppriseNotifier(), [f"json://127.0.0.1:{port}/?rto=60"], retry=retry)
    times = []
    for i in range(BATCHES):
        for firing in (True, False):
            batch = transitions(f"job{i}", firing)
            t = time.perf_counter()
            pager.submit(batch, now=float(i))
            times.append(time.perf_counter() - t)
    after()
    pager.close(5.0)
    stats = pager.snapshot()
    us = sorted(x * 1e6 for x in times)
    p99 = us[len(us) * 99 // 100]
    print(
        f"{name:<22} submit p50 {statistics.median(us):6.1f} us   p99 {p99:7.1f}"
        f" us   max {us[-1]:8.1f} us | sent {stats.sent:3d} abandoned {stats.abandoned:3d}"
        f" dropped {stats.dropped:3d} failed attempts {stats.failed_attempts:4d}"
    )


def import_costs() -> None:
    code = (
        "import time, sys; import sentinel; t = time.perf_counter(); import sentinel.actions.pager;"
        " a = time.perf_counter() - t; assert 'apprise' not in sys.modules;"
        " from sentinel.actions.notify import AppriseNotifier; n = AppriseNotifier();"
        " t = time.perf_counter(); n._load(); b = time.perf_counter() - t;"
        " print(f'{a * 1e3:.1f} {b * 1e3:.1f}')"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    pager_ms, apprise_ms = out.stdout.split()
    print(f"import sentinel.actions.pager: {pager_ms} ms after `import sentinel` (no apprise)")
    print(f"first page loads apprise:      {apprise_ms} ms, once, on a worker thread")


def main() -> None:
    import_costs()
    healthy = serve(None)
    measure("healthy endpoint", healthy.server_address[1])
    healthy.shutdown()
    measure("endpoint not listening", free_port())
    release = threading.Event()
    hanging = serve(release)
    measure("endpoint hanging", hanging.server_address[1], after=release.set)
    hanging.shutdown()


if __name__ == "__main__":
    main()
