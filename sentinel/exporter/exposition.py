"""Exposition: the bytes of one scrape, from one View.

The training series (~10,000) are written by ``text``; everything else —
alert states, counters, source and daemon health, process metrics — goes
through prometheus_client's own encoder over a ``ViewCollector`` with the
training families turned off, so the format chosen from the Accept header
(text 0.0.4 or OpenMetrics 1.0), escaping and ``# EOF`` stay the library's.
Both parts are made from the one View read at the start of the scrape.

``registry`` is the plain, all-collector form of the same series (a private
``CollectorRegistry``): the reference the tests compare against, and what
serves requests the fast path does not handle (``?name[]=`` filters).

This module must not serve HTTP nor hold any state between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from sentinel import clock
from sentinel.exporter.collector import ViewCollector
from sentinel.exporter.gil import yield_gil
from sentinel.exporter.text import render_training
from sentinel.model.view import View

_OPENMETRICS = "application/openmetrics-text"


class Exposition:
    """Renders ``view()`` for a scrape; thread-safe (it only reads)."""

    def __init__(
        self,
        view: Callable[[], View],
        *,
        now: Callable[[], float] = clock.wall,
        process_metrics: bool = True,
    ) -> None:
        self._view = view
        self._now = now
        # registry=None: not registered anywhere; collected per scrape below.
        self._process = ProcessCollector(registry=None) if process_metrics else None
        # support_collectors_without_names: our families are only known at
        # scrape time (no describe()), and this keeps ``?name[]=`` working.
        self.registry = CollectorRegistry(support_collectors_without_names=True)
        self.registry.register(ViewCollector(view, now=now))
        if self._process is not None:
            self.registry.register(self._process)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for a request with this Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        view = self._view()  # one read for both parts
        training = render_training(view, openmetrics=content_type.startswith(_OPENMETRICS))
        rest = _Rest(ViewCollector(lambda: view, now=self._now, training=False), self._process)
        # OpenMetrics ends with "# EOF", which the encoder writes: ours go first.
        return training.encode() + encoder(rest), content_type


def build_registry(
    view: Callable[[], View],
    *,
    now: Callable[[], float] = clock.wall,
    process_metrics: bool = True,
) -> CollectorRegistry:
    """A fresh private registry with every sentinel series (and the process metrics)."""
    return Exposition(view, now=now, process_metrics=process_metrics).registry


class _Rest:
    """A one-scrape collector: the non-training families, then the process metrics."""

    def __init__(self, view: ViewCollector, process: ProcessCollector | None) -> None:
        self._view = view
        self._process = process

    def collect(self) -> Iterator[Metric]:
        # The encoder formats each family as it gets it: handing the GIL on
        # between families keeps the owner loop's wait to one family's worth.
        for metric in self._view.collect():
            yield metric
            yield_gil()
        if self._process is not None:
            yield from self._process.collect()
