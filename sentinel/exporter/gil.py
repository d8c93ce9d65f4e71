"""yield_gil: how a scrape thread hands the GIL to the owner loop between metric families.

A thread that only computes keeps the GIL until another thread has waited a
whole switch interval for it (``sys.getswitchinterval()``, 5 ms), so the
owner loop, waking for its 50 ms tick while a scrape renders, would start
up to 5 ms late. Rendering releases the GIL between families instead
(~50 µs of work each), so the loop waits for one family at most.

``time.sleep(0)`` rather than ``os.sched_yield()``: both release the GIL,
but sleep(0) also parks the scrape thread for the kernel's timer slack
(~50 µs), long enough for the woken loop thread to take the GIL; after a
bare sched_yield the scrape thread often takes it back first. The scrape
takes longer in wall time (~0.1 ms a family), which no one waits on.

This module must not do anything else.
"""

from __future__ import annotations

import time


def yield_gil() -> None:
    time.sleep(0)
