"""Turning what users pass to ``publish`` into floats, without a device sync.

Plain numbers convert at once. Device tensors are copied to pinned host
memory with ``non_blocking=True`` behind a CUDA event; their record is
written to the ring on a later ``publish`` (or ``close``) once the event has
completed, so a step's values land together in the slot of their step,
usually one call late. CPU tensors need no copy and convert at once.
"""

from __future__ import annotations

import numbers
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def convert(name: str, value: object) -> float | Any:
    """A float, or a 1-element device tensor to resolve later; TypeError names the metric."""
    t = type(value)
    if t is float:
        return value
    if t is int:
        return _as_float(name, value)  # 10**400 is the user's mistake, not an internal error
    if t is bool or isinstance(value, (numbers.Real, np.bool_)):
        return _as_float(name, value)
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "biuf":
            raise TypeError(
                f"metric {name!r}: an array of shape {value.shape} and dtype {value.dtype}; "
                "publish a scalar"
            )
        return float(value.reshape(()))
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"metric {name!r}: a tensor of shape {tuple(value.shape)}; "
                "publish a 0-d or 1-element tensor"
            )
        if value.is_complex():
            raise TypeError(f"metric {name!r}: a complex tensor is not a metric")
        flat = value.detach().reshape(())
        if flat.device.type == "cpu":
            return float(flat.item())  # no device: nothing to wait for
        return flat
    raise TypeError(f"metric {name!r}: {t.__name__} is not a number")


def _as_float(name: str, value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as e:
        raise TypeError(f"metric {name!r}: {type(value).__name__} is not a number") from e


@dataclass
class Record:
    """One publish call whose device values are still in flight."""

    step: int
    when: float
    cols: list[int]
    values: list[float]
    waits: list[tuple[list[int], Any, Any]] = field(default_factory=list)  # (slots, host, event)

    def ready(self) -> bool:
        return all(event is None or bool(event.query()) for _, _, event in self.waits)

    def resolve(self) -> None:
        for slots, host, _ in self.waits:
            for i, v in zip(slots, host.tolist(), strict=True):
                self.values[i] = float(v)
        self.waits.clear()


def stage(record: Record, tensors: list[tuple[int, Any]]) -> None:
    """Start the device→host copies of ``tensors`` ((index into record.values, tensor))."""
    torch = sys.modules["torch"]
    by_device: dict[Any, list[tuple[int, Any]]] = {}
    for i, t in tensors:
        by_device.setdefault(t.device, []).append((i, t))
    for device, items in by_device.items():
        stacked = torch.stack([t.to(torch.float64) for _, t in items])
        slots = [i for i, _ in items]
        if device.type == "cuda":
            host = torch.empty(len(items), dtype=torch.float64, pin_memory=True)
            host.copy_(stacked, non_blocking=True)
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(device))
            record.waits.append((slots, host, event))
        else:
            # Other accelerators have no event we can poll portably; copy now.
            record.waits.append((slots, stacked.to("cpu"), None))


class Pending:
    """Records waiting for their device values, written strictly in call order."""

    def __init__(self, limit: int = 1024) -> None:
        self.queue: deque[Record] = deque()
        self.limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.queue)

    def push(self, record: Record) -> None:
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(record)

    def ready(self) -> list[Record]:
        """Pop the records at the head whose values have arrived (never waits)."""
        out: list[Record] = []
        while self.queue and self.queue[0].ready():
            rec = self.queue.popleft()
            rec.resolve()
            out.append(rec)
        return out

    def drain(self, timeout: float, now: Any) -> list[Record]:
        """At close: wait up to ``timeout`` seconds; a record whose values never arrive is
        dropped alone, and the ones behind it are still written."""
        deadline = now() + timeout
        out: list[Record] = []
        while self.queue:
            out.extend(self.ready())
            if not self.queue:
                break
            if now() > deadline:
                self.queue.popleft()
                self.dropped += 1
            else:
                time.sleep(0.001)
        return out
