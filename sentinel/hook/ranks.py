"""Who am I in a distributed job: rank and world size, without importing torch."""

from __future__ import annotations

import os
import sys
from typing import Any


def dist_module() -> Any | None:
    """``torch.distributed`` if torch is already imported and a process group is up.

    torch is never imported here: a trainer that uses it has imported it, and a
    plain-float publisher must not pay seconds of import time.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = getattr(torch, "distributed", None)
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist
    except Exception:  # noqa: BLE001 - a half-initialised torch is not ours to raise
        return None
    return None


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def discover(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size: arguments first, then torch.distributed, then env, then (0, 1).

    Explicit arguments that contradict each other are the caller's mistake and
    raise; an environment that does (``LOCAL_RANK=1`` without ``WORLD_SIZE``)
    is not, and the world is taken to be at least ``rank + 1``.
    """
    explicit = rank is not None and world_size is not None
    dist = dist_module()
    if rank is None:
        if dist is not None:
            rank = int(dist.get_rank())
        else:
            rank = _env_int("RANK")
            if rank is None:
                rank = _env_int("LOCAL_RANK")
    if world_size is None:
        world_size = int(dist.get_world_size()) if dist is not None else _env_int("WORLD_SIZE")
    rank = 0 if rank is None else rank
    world_size = 1 if world_size is None else world_size
    if rank < 0 or world_size < 1:
        raise ValueError(f"rank {rank} and world size {world_size} must be >= 0 and >= 1")
    if rank >= world_size:
        if explicit:
            raise ValueError(f"rank {rank} does not fit world size {world_size}")
        world_size = rank + 1
    return rank, world_size
