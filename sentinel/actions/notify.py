"""The Notifier port and its two real implementations: Apprise and the daemon's log.

``AppriseNotifier`` is the only importer of ``apprise`` in sentinel, and it
imports it lazily, on the first page actually sent: the import alone costs
~80 ms and tens of MB, which a daemon that never pages should not pay.

A notifier sends one message and reports, per URL, whether it got through.
It must not retry, sleep, queue or dedup: that is the outbox's and the
pager's job (``delivery.py``, ``pager.py``). It must not read the
environment either: the daemon reads ``SENTINEL_NOTIFY_URLS`` once, with
``urls_from_env``, and passes the URLs in.

Apprise 2.x notes (read from its source, 2.2): ``Apprise.notify()`` returns
an ``AppriseResult``, truthy only when its status is SUCCESS (not on NOMATCH,
PARTIAL or TIMEOUT), iterable over one ``NotifyResult`` per service, and
holding captured log entries that ``close()`` (or ``with``) releases. Its
URLs in results are privacy-masked, so they cannot be matched back to ours:
we build one ``Apprise`` per URL, which makes the per-URL outcome exact.
With the default asset a service with a timeout is run on Apprise's own
process-wide thread pool; we set ``async_mode=False`` and
``service_timeout=0`` so the call runs on our worker thread and no hidden
threads outlive us. A slow endpoint is bounded by the plugin's socket
timeouts (4 s connect + 4 s read by default; ``?cto=&rto=`` in the URL).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlsplit

log = logging.getLogger("sentinel.notify")

ENV_URLS = "SENTINEL_NOTIFY_URLS"
LOG_TARGET = "log"

# Schemes whose host part is an address, not a secret: shown as-is in records.
_PLAIN_HOST_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


class NotifyKind(enum.Enum):
    """How a message looks at the receiver; the values are Apprise's NotifyType names."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class TargetResult:
    """The outcome of one message to one URL. ``target`` is safe to log and journal."""

    target: str
    ok: bool
    retryable: bool = True
    detail: str = ""


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one ``Notifier.send``: one ``TargetResult`` per URL (or the log)."""

    targets: tuple[TargetResult, ...]

    @property
    def ok(self) -> bool:
        return bool(self.targets) and all(t.ok for t in self.targets)

    @property
    def failed(self) -> tuple[TargetResult, ...]:
        return tuple(t for t in self.targets if not t.ok)


class Notifier(Protocol):
    """Sends one message to the given URLs, once, and says how each one went."""

    def send(
        self, title: str, body: str, urls: Sequence[str], *, kind: NotifyKind = NotifyKind.FAILURE
    ) -> DeliveryResult: ...


def urls_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The URLs in ``SENTINEL_NOTIFY_URLS``: comma- or whitespace-separated, blanks dropped."""
    return tuple(u for u in re.split(r"[,\s]+", environ.get(ENV_URLS, "")) if u)


def redact(url: str) -> str:
    """A name for ``url`` that is safe to log: most Apprise URLs carry tokens.

    Webhook-style schemes keep host and port (``json://127.0.0.1:8080``);
    every other scheme keeps only the scheme and a short digest, so two
    different URLs still read differently in the journal.
    """
    if not url:
        return LOG_TARGET
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _PLAIN_HOST_SCHEMES and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{scheme}://{parts.hostname}{port}"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{scheme or '?'}://…{digest}"


class LogNotifier:
    """Writes each page to the ``sentinel.notify`` logger: the default with no URL."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    def send(
        self, title: str, body: str, urls: Sequence[str], *, kind: NotifyKind = NotifyKind.FAILURE
    ) -> DeliveryResult:
        level = logging.INFO if kind in (NotifyKind.SUCCESS, NotifyKind.INFO) else logging.WARNING
        self._log.log(level, "%s\n%s", title, body)
        return DeliveryResult((TargetResult(LOG_TARGET, True),))


class AppriseNotifier:
    """Sends through Apprise, one ``Apprise`` object per URL and call (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: ModuleType | None = None
        self._asset: Any = None

    @property
    def loaded(self) -> bool:
        """True once apprise has been imported (the first send)."""
        return self._module is not None

    def send(
        self, title: str, body: str, urls: Sequence[str], *, kind: NotifyKind = NotifyKind.FAILURE
    ) -> DeliveryResult:
        if not urls:
            return DeliveryResult((TargetResult(LOG_TARGET, False, False, "no URL given"),))
        apprise = self._load()
        return DeliveryResult(tuple(self._send_one(apprise, title, body, u, kind) for u in urls))

    def _load(self) -> ModuleType:
        with self._lock:
            if self._module is None:
                # Apprise 2.2 imports ``imghdr`` (deprecated since 3.11) when it first loads
                # its plugins: not ours to act on, and fatal under ``-W error``. Loading them
                # here, once, under the lock, keeps the warning filter change single-threaded.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    import apprise  # the one import of apprise in sentinel, deferred on purpose

                    self._asset = apprise.AppriseAsset(
                        async_mode=False, service_timeout=0, storage_mode="memory"
                    )
                    apprise.Apprise(asset=self._asset).add("json://localhost")
                self._module = apprise
            return self._module

    def _send_one(
        self, apprise: ModuleType, title: str, body: str, url: str, kind: NotifyKind
    ) -> TargetResult:
        target = redact(url)
        service = apprise.Apprise(asset=self._asset)
        if not service.add(url):
            # A URL Apprise cannot parse will not parse on the next attempt either.
            return TargetResult(target, False, retryable=False, detail="not a valid Apprise URL")
        with service.notify(
            body=body, title=title, notify_type=kind.value, body_format="text"
        ) as r:
            # AppriseResult (2.x): bool() is True only for SUCCESS.
            if r:
                return TargetResult(target, True)
            messages = [e.message for s in r for e in s.logs()]
            detail = f"{r.status.name}: {messages[-1]}" if messages else r.status.name
            return TargetResult(target, False, retryable=True, detail=detail)


def make_notifier(urls: Sequence[str]) -> Notifier:
    """The notifier for a daemon with these URLs: Apprise, or the log when there are none."""
    return AppriseNotifier() if urls else LogNotifier()
