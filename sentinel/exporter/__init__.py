"""The Prometheus exporter: a collector over the View the owner loop swaps in, served over HTTP.

The only package that imports ``prometheus_client``. It reads the View and
nothing else; it never writes daemon state and shares no lock with the loop.

    server = exporter.start(lambda: daemon.view)  # 127.0.0.1:9464 by default
    ...
    server.close()

Modules: ``names`` (metric name sanitising), ``collector`` (ViewCollector:
every series as prometheus_client families), ``text`` (the training series
written directly, the scrape's hot path), ``exposition`` (one scrape's bytes),
``server`` (HTTP).
"""

from __future__ import annotations

from sentinel.exporter.collector import ViewCollector
from sentinel.exporter.exposition import Exposition, build_registry
from sentinel.exporter.server import DEFAULT_ADDR, DEFAULT_PORT, MetricsServer, serve, start

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_PORT",
    "Exposition",
    "MetricsServer",
    "ViewCollector",
    "build_registry",
    "serve",
    "start",
]
