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
    checkpoints: tuple[int, ...]  # each rank's checkpoint request counter

    @property
    def checkpoint(self) -> int:
        """Checkpoint requests made to any rank so far: grows by one per request."""
        return sum(self.checkpoints)


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
        # The collective's own rank, not the Publisher's: they must index the same slot.
        self.rank = int(dist.get_rank())
        self.world = int(dist.get_world_size())
        self.agreed = Agreed(False, -1, (0,) * self.world)

    def due(self, step: int) -> bool:
        bucket = step // self.sync_every
        if bucket == self._bucket:
            return False
        self._bucket = bucket
        return True

    def exchange(self, stop: bool, checkpoint: int) -> Agreed:
        """Adopt the previous round's result, then start the next round."""
        if not self._dist.is_initialized():  # torn down before we were closed
            return self.agreed
        if self._work is not None:
            self._work.wait()
            got = [int(x) for x in self._buf.tolist()]
            prev = self.agreed
            self.agreed = Agreed(
                stop=prev.stop or got[0] > 0,
                stop_rank=got[1] - 1 if got[0] > 0 and not prev.stop else prev.stop_rank,
                checkpoints=tuple(
                    max(a, b) for a, b in zip(prev.checkpoints, got[2:], strict=True)
                ),
            )
        local = [0] * (2 + self.world)
        if stop:
            local[0], local[1] = 1, self.rank + 1
        local[2 + self.rank] = checkpoint
        self._buf = self._torch.tensor(local, dtype=self._torch.int64, device=self._device)
        self._work = self._dist.all_reduce(self._buf, op=self._dist.ReduceOp.MAX, async_op=True)
        return self.agreed
