"""sentinel: a watchdog for PyTorch training jobs.

The public surface is small on purpose: the hook a trainer embeds
(``Publisher``), the exception it may raise (``StopRequested``) and the
probes that turn tensors into the numbers rules watch (``sentinel.probes``,
loaded on first use because it needs torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentinel.errors import PublisherWarning, SentinelError, StopRequested
from sentinel.hook.publisher import Publisher

if TYPE_CHECKING:
    from sentinel import probes

__all__ = ["Publisher", "PublisherWarning", "SentinelError", "StopRequested", "probes"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "probes":
        import importlib

        return importlib.import_module("sentinel.probes")
    raise AttributeError(f"module 'sentinel' has no attribute {name!r}")
