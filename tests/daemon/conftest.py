"""Every test here must stop the threads it starts (the daemon's waker, pager and exec workers)."""

from __future__ import annotations

from tests.helpers import no_leaked_threads  # noqa: F401 - autouse
