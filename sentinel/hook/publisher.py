"""Publisher: the hook a trainer embeds. It must never be what crashes training.

User mistakes raise at once (``TypeError``/``ValueError`` naming the metric).
Everything else that goes wrong inside (an unwritable run directory, a full
disk, a bug of ours) warns once with ``PublisherWarning`` and turns
publishing into a no-op; training goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import warnings
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sentinel.clock import monotonic, wall
from sentinel.errors import PublisherWarning, StopRequested
from sentinel.hook.agreement import Agreement
from sentinel.hook.ranks import discover, dist_module
from sentinel.hook.values import Pending, Record, convert, stage
from sentinel.wire import layout as L
from sentinel.wire.liveness import own_start_time, same_process
from sentinel.wire.reader import SegmentReader
from sentinel.wire.rundir import default_run_dir
from sentinel.wire.writer import SegmentWriter

_FLOAT = float
_INT = int


class Publisher:
    """Publishes metric snapshots of one (job, rank) into a segment.

    ``publish(step, **metrics)`` costs a few microseconds for plain numbers.
    Device tensors are resolved asynchronously: their step appears in the
    ring on a later call, once the copy has landed (usually the next call).

    Under ``torch.distributed`` the stop and checkpoint requests are agreed
    across ranks every ``sync_every`` steps, so all ranks stop together; every
    rank must then publish at the same steps.
    """

    def __init__(
        self,
        job: str,
        rank: int | None = None,
        world_size: int | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        *,
        ring: int = L.DEFAULT_RING,
        max_metrics: int = L.DEFAULT_CAPACITY,
        on_stop: Literal["flag", "raise"] = "flag",
        sync_every: int = 10,
    ) -> None:
        if not isinstance(job, str) or not L.valid_job_name(job):
            raise ValueError(
                f"job name {job!r} must be 1-63 characters of letters, digits, '_', '.', '-'"
            )
        if on_stop not in ("flag", "raise"):
            raise ValueError(f"on_stop must be 'flag' or 'raise', not {on_stop!r}")
        if sync_every < 1:
            raise ValueError(f"sync_every must be at least 1, not {sync_every}")
        L.Geometry(ring, max_metrics).check()
        self.job = job
        self.rank, self.world_size = discover(rank, world_size)
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.max_metrics = max_metrics
        self._raise = on_stop == "raise"
        self._cols: dict[str, int] = {}
        self._plans: dict[tuple[str, ...], tuple[Any, tuple[int, ...], tuple[int, ...]]] = {}
        self._pending = Pending()
        self._last_keys: tuple[str, ...] = ()
        self._last_plan: Any = None
        self._queue = self._pending.queue
        self._warned = False
        self._stop_seen = False
        self._ckpt_done = 0
        self._stop: tuple[int, str] = (L.STOP_NONE, "")
        self._writer: SegmentWriter | None = None
        dist = dist_module()
        self._agreement: Agreement | None = None
        try:
            if dist is not None and self.world_size > 1:
                self._agreement = Agreement(dist, sync_every)
            self._writer = self._open(ring, max_metrics)
        except Exception as e:  # noqa: BLE001 - degrade, never raise into training
            self._degrade(f"cannot publish to {self.run_dir}: {e}")
        _live.add(self)

    # -- setup -------------------------------------------------------------------
    def _open(self, ring: int, capacity: int) -> SegmentWriter | None:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.run_dir / L.segment_filename(self.job, self.rank)
        for other in list(_live):
            if other is not self and other.path == path:
                other.close()  # a re-run notebook cell: the newer publisher wins
        if path.exists() and self._owned_by_live_process(path):
            self._degrade(
                f"{path} belongs to a live process: job {self.job!r} rank {self.rank} "
                "is already being published; pick another job name"
            )
            return None
        return SegmentWriter(
            path,
            job=self.job,
            rank=self.rank,
            world_size=self.world_size,
            pid=os.getpid(),
            start_time=own_start_time(),
            created=wall(),
            geometry=L.Geometry(ring, capacity),
        )

    @staticmethod
    def _owned_by_live_process(path: Path) -> bool:
        try:
            with SegmentReader(path) as old:
                ident = old.identity
                if ident.pid == os.getpid() or old.closed:
                    return False
                return same_process(ident.pid, ident.start_time)
        except Exception:  # noqa: BLE001 - an unreadable leftover is replaced
            return False

    def _degrade(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"sentinel: {why}; metrics for job {self.job!r} rank {self.rank} "
                "will not be published (training continues)",
                PublisherWarning,
                stacklevel=3,
            )
        w, self._writer = self._writer, None
        if w is not None:
            with contextlib.suppress(Exception):
                w.close(clean=False)

    # -- publishing ----------------------------------------------------------------
    def publish(self, step: int, /, **metrics: object) -> None:
        """Record ``metrics`` for ``step``. NaN and inf are published as they are."""
        w = self._writer
        if type(step) is _INT and w is not None and not self._queue:
            keys = tuple(metrics)
            # Most loops publish the same names every step: compare by identity first.
            if keys == self._last_keys:
                plan = self._last_plan
            else:
                plan = self._plans.get(keys)
                if plan is not None:
                    self._last_keys, self._last_plan = keys, plan
            if plan is not None:
                values: Any = metrics.values()
                # Cheap screen: floats and ints sum to a float in C; anything
                # else (tensors, arrays, strings) takes the checked path.
                try:
                    plain = type(sum(values, 0.0)) is _FLOAT
                except Exception:  # noqa: BLE001
                    plain = False
                if plain:
                    try:
                        body, mask, cols = plan
                        if body is not None:
                            w.write(step, wall(), body, mask, values)
                        else:
                            w.write_scattered(step, wall(), cols, list(values))
                    except Exception as e:  # noqa: BLE001
                        self._degrade(f"internal error while publishing: {e!r}")
                    if self._agreement is not None or self._raise:
                        self._after(step)
                    return
        self._publish_slow(step, metrics)

    def _publish_slow(self, step: Any, metrics: dict[str, object]) -> None:
        try:
            step = int(step.__index__())
        except (AttributeError, TypeError):
            raise TypeError(f"step must be an integer, not {type(step).__name__}") from None
        converted = [(name, convert(name, v)) for name, v in metrics.items()]
        cols = tuple(self._column(name) for name, _ in converted)
        w = self._writer
        if w is None:
            # Degraded, but still a member of the cross-rank round: the other
            # ranks would wait for this one in every all-reduce otherwise.
            self._after(step)
            return
        try:
            plain = [v if type(v) is _FLOAT or type(v) is _INT else None for _, v in converted]
            record = Record(step, wall(), list(cols), [0.0 if v is None else v for v in plain])
            tensors = [(i, v) for i, (_, v) in enumerate(converted) if plain[i] is None]
            if tensors:
                stage(record, tensors)
            self._pending.push(record)
            for rec in self._pending.ready():
                self._write_record(w, rec)
            if self._pending.dropped:
                w.set_dropped(self._pending.dropped)
        except Exception as e:  # noqa: BLE001
            self._degrade(f"internal error while publishing: {e!r}")
        self._after(step)

    def _column(self, name: str) -> int:
        col = self._cols.get(name)
        if col is not None:
            return col
        if not L.valid_metric_name(name):
            raise ValueError(
                f"metric name {name!r} is not an identifier of at most 63 ASCII characters"
            )
        if len(self._cols) >= self.max_metrics:
            raise ValueError(
                f"metric {name!r} does not fit: the name table holds {self.max_metrics} "
                "names (raise Publisher(max_metrics=...))"
            )
        col = len(self._cols)
        w = self._writer
        if w is not None:
            try:
                w.add_name(name)
            except Exception as e:  # noqa: BLE001
                self._degrade(f"internal error adding metric {name!r}: {e!r}")
        self._cols[name] = col
        return col

    def _write_record(self, w: SegmentWriter, rec: Record) -> None:
        key = tuple(rec.cols)
        plan = self._plan(w, key)
        body, mask, cols = plan
        if body is not None:
            w.write(rec.step, rec.when, body, mask, rec.values)
        else:
            w.write_scattered(rec.step, rec.when, cols, rec.values)

    def _plan(
        self, w: SegmentWriter, cols: tuple[int, ...]
    ) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        names = tuple(w.names[c] for c in cols)
        plan = self._plans.get(names)
        if plan is None:
            first = cols[0] if cols else 0
            contiguous = cols == tuple(range(first, first + len(cols)))  # () counts: a heartbeat
            body = w.body(first, len(cols)) if contiguous else None
            plan = (body, w.mask(cols), cols)
            self._plans[names] = plan
        return plan

    # -- control -------------------------------------------------------------------
    def _after(self, step: int) -> None:
        """Per-publish control work: the cross-rank round, and on_stop='raise'."""
        a = self._agreement
        if a is not None and a.due(step):
            try:
                w = self._writer
                local_stop = w.stop_requested() if w is not None else False
                local_ckpt = w.checkpoint_request() if w is not None else 0
                a.exchange(local_stop, local_ckpt)
            except Exception as e:  # noqa: BLE001
                self._agreement = None
                self._degrade(f"cross-rank agreement failed: {e!r}")
        if self._raise and self.should_stop:
            code, reason = self.stop_reason_code()
            raise StopRequested(code, reason, step)

    @property
    def should_stop(self) -> bool:
        """True once a stop was requested (agreed across ranks under torch.distributed)."""
        if self._stop_seen:
            return True
        a = self._agreement
        w = self._writer
        if a is not None:
            if a.agreed.stop:
                self._latch_stop(a.agreed.stop_rank)
        elif w is not None and w.stop_requested():
            self._latch_stop(self.rank)
        return self._stop_seen

    def _latch_stop(self, by_rank: int) -> None:
        w = self._writer
        if by_rank == self.rank and w is not None:
            self._stop = w.stop_request()
        else:
            self._stop = (L.STOP_OTHER_RANK, f"stop requested on rank {by_rank}")
        self._stop_seen = True

    def stop_reason_code(self) -> tuple[int, str]:
        return self._stop

    @property
    def stop_reason(self) -> str | None:
        """Why the stop was requested, or None while none was."""
        return self._stop[1] if self.should_stop else None

    @property
    def should_checkpoint(self) -> bool:
        """True while a checkpoint request has not been acknowledged with ``checkpoint_done``."""
        a = self._agreement
        if a is not None:
            # Agreed, so a rank whose hook degraded still joins a collective save.
            return a.agreed.checkpoint > self._ckpt_done
        w = self._writer
        return w is not None and w.checkpoint_request() > w.checkpoint_ack()

    def checkpoint_done(self) -> None:
        """Acknowledge the checkpoint requests seen so far."""
        a = self._agreement
        w = self._writer
        if a is not None:
            self._ckpt_done = a.agreed.checkpoint
            if w is not None:
                w.ack_checkpoint(a.agreed.checkpoints[a.rank])
        elif w is not None:
            w.ack_checkpoint(w.checkpoint_request())

    @property
    def enabled(self) -> bool:
        """False once publishing degraded to a no-op."""
        return self._writer is not None

    @property
    def path(self) -> Path | None:
        return self._writer.path if self._writer is not None else None

    # -- lifecycle -----------------------------------------------------------------
    def close(self, *, timeout: float = 5.0) -> None:
        """Write what is still in flight and mark the segment cleanly finished."""
        self._finish(clean=True, timeout=timeout)

    def _finish(self, *, clean: bool, timeout: float) -> None:
        w = self._writer
        _live.discard(self)
        if w is None or w.closed:
            return
        try:
            for rec in self._pending.drain(timeout, monotonic):
                self._write_record(w, rec)
            if self._pending.dropped:
                w.set_dropped(self._pending.dropped)
            w.close(clean=clean)
        except Exception as e:  # noqa: BLE001
            self._degrade(f"internal error while closing: {e!r}")
        self._writer = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A run that died of an exception is not a finished run; obeying a stop is.
        failed = exc is not None and not isinstance(exc, StopRequested)
        self._finish(clean=not failed, timeout=5.0)


_live: weakref.WeakSet[Publisher] = weakref.WeakSet()


def _forget_in_child() -> None:
    # A forked child (a DataLoader worker) shares the parent's mapping; if it
    # published too, two writers would corrupt the ring. Its copies go quiet.
    for pub in list(_live):
        pub._writer = None
        pub._agreement = None
    _live.clear()


os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def _close_at_exit() -> None:
    # A script that ends without close() finished; one that died of an uncaught
    # exception did not, and its segment must keep saying so.
    last = getattr(sys, "last_value", None)
    crashed = last is not None and not isinstance(last, StopRequested)
    for pub in list(_live):
        pub._finish(clean=not crashed, timeout=1.0)
