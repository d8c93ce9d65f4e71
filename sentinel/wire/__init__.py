"""The segment that connects a trainer to the daemon: layout, writer, reader.

Stdlib and NumPy only: both the hook and the daemon import this package.
"""

from __future__ import annotations

from sentinel.wire.layout import (
    DEFAULT_CAPACITY,
    DEFAULT_RING,
    LAYOUT_VERSION,
    MAGIC,
    STOP_NONE,
    STOP_OPERATOR,
    STOP_OTHER_RANK,
    STOP_RULE,
    SUFFIX,
    Geometry,
    segment_filename,
    valid_job_name,
    valid_metric_name,
)
from sentinel.wire.reader import Batch, Identity, SegmentReader
from sentinel.wire.rundir import default_run_dir, list_segments
from sentinel.wire.writer import SegmentWriter

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_RING",
    "LAYOUT_VERSION",
    "MAGIC",
    "STOP_NONE",
    "STOP_OPERATOR",
    "STOP_OTHER_RANK",
    "STOP_RULE",
    "SUFFIX",
    "Batch",
    "Geometry",
    "Identity",
    "SegmentReader",
    "SegmentWriter",
    "default_run_dir",
    "list_segments",
    "segment_filename",
    "valid_job_name",
    "valid_metric_name",
]
