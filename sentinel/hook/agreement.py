"""Agreeing on stop and checkpoint across ranks with ``torch.distributed``.

One rank leaving the loop alone hangs every collective of the others, so
under a process group the hook never acts on its own control words: every
``sync_every`` steps each rank contributes (stop?, requesting rank + 1,
checkpoint requests) to a MAX all-reduce started with ``async_op=True``;
the result is adopted at the *next* sync point, when it has long completed.
Every rank adopts the same result at the same step, so all ranks see
``should_stop`` at the same step, at most ``2 * sync_every`` steps after the
request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Agreed:
    stop: bool
    stop_rank: int  # the highest rank that was asked to stop, -1 if none
    checkpoint: int  # the highest checkpoint request counter of any rank


class Agreement:
    """Owns the in-flight all-reduce. Not thread-safe: called from the training loop."""

    def __init__(self, dist: Any, sync_every: int) -> None:
        import torch

        self._torch = torch
        self._dist = dist
        self.sync_every = sync_every
        backend = str(dist.get_backend())
        if backend == "nccl":
            self._device = torch.device("cuda", torch.cuda.current_device())
        else:
            self._device = torch.device("cpu")
        self._bucket: int | None = None
        self._work: Any = None
        self._buf: Any = None
        self.agreed = Agreed(False, -1, 0)

    def due(self, step: int) -> bool:
        bucket = step // self.sync_every
        if bucket == self._bucket:
            return False
        self._bucket = bucket
        return True

    def exchange(self, rank: int, stop: bool, checkpoint: int) -> Agreed:
        """Adopt the previous round's result, then start the next round."""
        if not self._dist.is_initialized():  # torn down before we were closed
            return self.agreed
        if self._work is not None:
            self._work.wait()
            s, r, c = (int(x) for x in self._buf.tolist())
            prev = self.agreed
            self.agreed = Agreed(
                stop=prev.stop or s > 0,
                stop_rank=r - 1 if s > 0 and not prev.stop else prev.stop_rank,
                checkpoint=max(prev.checkpoint, c),
            )
        local = [1 if stop else 0, rank + 1 if stop else 0, checkpoint]
        self._buf = self._torch.tensor(local, dtype=self._torch.int64, device=self._device)
        self._work = self._dist.all_reduce(self._buf, op=self._dist.ReduceOp.MAX, async_op=True)
        return self.agreed
