"""FakeNotifier: records messages instead of sending them; fails on demand.

For unit tests of the pager and the outbox. Thread-safe, since the outbox
calls it from worker threads. Must not import apprise or touch the network.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sentinel.actions.notify import DeliveryResult, NotifyKind, TargetResult, redact


@dataclass(frozen=True)
class Sent:
    """One call to ``send``: what was asked and whether the fake said it got through."""

    title: str
    body: str
    urls: tuple[str, ...]
    kind: NotifyKind
    ok: bool


class FakeNotifier:
    """``fail_next(n)`` makes the next n sends fail; ``down`` makes every send fail;
    a URL in ``dead`` always fails (the others in the same call still get through).

    ``gate``, when set, is an Event every send waits on first (a slow endpoint).
    """

    def __init__(self) -> None:
        self.calls: list[Sent] = []
        self.down = False
        self.dead: set[str] = set()
        self.retryable = True
        self.gate: threading.Event | None = None
        self._fail = 0
        self._lock = threading.Lock()

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._fail = n

    @property
    def sent(self) -> list[Sent]:
        """The calls that got through, in order."""
        with self._lock:
            return [c for c in self.calls if c.ok]

    def send(
        self, title: str, body: str, urls: Sequence[str], *, kind: NotifyKind = NotifyKind.FAILURE
    ) -> DeliveryResult:
        if self.gate is not None:
            self.gate.wait()
        with self._lock:
            ok = not self.down and self._fail <= 0
            self._fail -= 1
            oks = {u: ok and u not in self.dead for u in tuple(urls) or ("",)}
            self.calls.append(Sent(title, body, tuple(urls), kind, all(oks.values())))
        return DeliveryResult(
            tuple(
                TargetResult(redact(u), good, self.retryable, "" if good else "fake failure")
                for u, good in oks.items()
            )
        )
