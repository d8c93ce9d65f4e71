"""Every test here must stop the threads it starts (after watchdog's leak-checking fixtures)."""

from __future__ import annotations

from tests.helpers import no_leaked_threads  # noqa: F401 - autouse
