"""Per-job state the rules read: the latest values and bounded metric windows.

Owned by the daemon's loop thread: ``Store.fold`` every sample in step order,
then the rules engine reads the returned ``JobState``. No locks, no clock, no
I/O; sizes come from the loaded rules (``WindowNeed`` per metric).
"""

from __future__ import annotations

from sentinel.state.series import Series
from sentinel.state.store import DEFAULT_CAP, DEFAULT_PASSIVE, JobState, Store, WindowNeed

__all__ = ["DEFAULT_CAP", "DEFAULT_PASSIVE", "JobState", "Series", "Store", "WindowNeed"]
