"""The only module that reads time. Everything else takes ``now`` or calls these.

``wall`` is the builtin itself, not a wrapper: the hook calls it once per
publish and a Python-level frame would double its cost.
"""

from __future__ import annotations

import time

wall = time.time
monotonic = time.monotonic
