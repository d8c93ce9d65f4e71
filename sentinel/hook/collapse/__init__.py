"""Collapse analysis of hidden states: ``CollapseCollector`` and the metrics it reports.

Gathers features by class (for a language model, by next token) across
batches on the training device, in bounded memory, and computes SVD entropy,
effective rank, NC1, GNC2, UNC3 and the class-mean norm spread on demand.
Imports torch; the rest of ``sentinel.hook`` does not import this package.
"""

from __future__ import annotations

from sentinel.hook.collapse.analysis import Analysis, ClassStats, analyse, select_classes
from sentinel.hook.collapse.collector import CollapseCollector

__all__ = ["Analysis", "ClassStats", "CollapseCollector", "analyse", "select_classes"]
