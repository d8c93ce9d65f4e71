"""``ClassSums``: per-class running sums, squared-norm sums and counts on the device.

The one job: exact per-class accumulation with ``index_add_`` and no host
read. Row ``capacity`` is a trash row: items that must not count (ignored,
excluded, out of range) are added there instead of being filtered out, since
filtering gives a data-dependent shape and so a device→host sync. Counts use
``index_add_``, not ``bincount``, which reads the largest label back to size
its output on CUDA (and has no meta-device kernel).
"""

from __future__ import annotations

import torch
from torch import Tensor


class ClassSums:
    """S_c = Σ h, q_c = Σ ‖h‖² and n_c for classes 0..capacity-1, plus a dropped-label count."""

    def __init__(
        self, capacity: int, dim: int, *, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.capacity = capacity
        self.dim = dim
        self.sums = torch.zeros(capacity + 1, dim, device=device, dtype=dtype)
        self.sq_norms = torch.zeros(capacity + 1, device=device, dtype=dtype)
        self.counts = torch.zeros(capacity + 1, device=device, dtype=torch.int64)
        self.dropped = torch.zeros((), device=device, dtype=torch.int64)

    @property
    def device(self) -> torch.device:
        return self.counts.device

    def add(self, features: Tensor, labels: Tensor, keep: Tensor) -> Tensor:
        """Fold in the rows where ``keep``; returns the mask of rows actually counted.

        Kept rows whose label is outside [0, capacity) are dropped and counted.
        """
        cap = self.capacity
        in_range = (labels >= 0) & (labels < cap)
        self.dropped += (keep & ~in_range).sum(dtype=torch.int64)
        valid = keep & in_range
        slot = torch.where(valid, labels, cap)
        x = features.to(self.sums.dtype)
        self.sums.index_add_(0, slot, x)
        self.sq_norms.index_add_(0, slot, x.pow(2).sum(1))
        self.counts.index_add_(0, slot, torch.ones_like(slot))
        return valid

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` classes, keeping what was collected."""
        old = self.capacity
        if capacity <= old:
            return
        sums = self.sums.new_zeros(capacity + 1, self.dim)
        sums[:old] = self.sums[:old]
        sq = self.sq_norms.new_zeros(capacity + 1)
        sq[:old] = self.sq_norms[:old]
        counts = self.counts.new_zeros(capacity + 1)
        counts[:old] = self.counts[:old]
        self.sums, self.sq_norms, self.counts, self.capacity = sums, sq, counts, capacity

    def rows(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(counts, sums, sq_norms) of classes ``ids`` (on this device), copied to the CPU."""
        return (
            self.counts.index_select(0, ids).cpu(),
            self.sums.index_select(0, ids).cpu(),
            self.sq_norms.index_select(0, ids).cpu(),
        )

    def load(self, ids: Tensor, counts: Tensor, sums: Tensor, sq_norms: Tensor) -> None:
        """Set the rows of classes ``ids`` (CPU tensors from a dump)."""
        dev, dt = self.device, self.sums.dtype
        at = ids.to(dev)
        self.sums.index_copy_(0, at, sums.to(dev, dt))
        self.sq_norms.index_copy_(0, at, sq_norms.to(dev, dt))
        self.counts.index_copy_(0, at, counts.to(dev))

    def reset(self) -> None:
        self.sums.zero_()
        self.sq_norms.zero_()
        self.counts.zero_()
        self.dropped.zero_()
