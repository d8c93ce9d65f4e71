"""A fixed-size uniform sample of feature rows, kept on the features' device.

The one job: Algorithm R (Vitter 1985), vectorised over a batch with no
host read. Item number ``i`` (0-based, counting only valid items) fills slot
``i`` while ``i < size``; afterwards it replaces slot ``j ~ U{0..i}`` when
``j < size``, i.e. with probability ``size / (i + 1)``. Every valid item seen
so far is then in the sample with the same probability ``size / seen``.

Invalid items and rejected candidates are routed to one extra "trash" row
(index ``size``) instead of being filtered out: filtering would give a
data-dependent shape, which needs a device→host sync. Two candidates of one
batch that draw the same slot are resolved by ``index_copy_`` in an order
the backend chooses (sequential algorithm R would keep the later one); once
``seen`` is much larger than the batch such collisions are rare and the
sample stays uniform to within that tie-break.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Reservoir:
    """``size`` rows of dimension ``dim`` with their labels; ``seen`` counts valid items."""

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        device: torch.device,
        dtype: torch.dtype,
        generator: torch.Generator | None = None,
    ) -> None:
        self.size = size
        self.generator = generator
        self.rows = torch.zeros(size + 1, dim, device=device, dtype=dtype)
        self.labels = torch.full((size + 1,), -1, device=device, dtype=torch.int64)
        self.seen = torch.zeros((), device=device, dtype=torch.int64)

    def add(self, features: Tensor, labels: Tensor, valid: Tensor) -> None:
        """Offer ``features`` (N, dim) with ``labels`` (N,); only rows where ``valid`` count."""
        n = features.shape[0]
        if n == 0:
            return
        # Position of each valid item in the stream of valid items (invalid
        # ones get their neighbour's number, and are sent to the trash below).
        pos = self.seen + torch.cumsum(valid, 0, dtype=torch.int64) - 1
        u = torch.rand(n, device=features.device, dtype=torch.float64, generator=self.generator)
        # floor(u * (pos + 1)) is uniform on {0..pos}; float64 is exact far past 2**40 items.
        draw = (u * (pos + 1).to(torch.float64)).to(torch.int64)
        slot = torch.where(pos < self.size, pos, draw)
        slot = torch.where(valid & (slot < self.size), slot, self.size)
        self.rows.index_copy_(0, slot, features.to(self.rows.dtype))
        self.labels.index_copy_(0, slot, labels)
        self.seen += valid.sum(dtype=torch.int64)

    def filled(self) -> tuple[Tensor, Tensor]:
        """The filled rows and their labels, copied to the CPU (reads ``seen``: syncs)."""
        k = min(int(self.seen), self.size)
        return self.rows[:k].cpu(), self.labels[:k].cpu()

    def load(self, rows: Tensor, labels: Tensor, seen: int) -> None:
        """Refill from a dump: ``rows`` (k, dim) were the sample after ``seen`` items."""
        k = min(rows.shape[0], self.size)
        self.reset()
        self.rows[:k] = rows[:k].to(self.rows.device, self.rows.dtype)
        self.labels[:k] = labels[:k].to(self.labels.device)
        self.seen.fill_(max(seen, k))

    def reset(self) -> None:
        self.rows.zero_()
        self.labels.fill_(-1)
        self.seen.zero_()
