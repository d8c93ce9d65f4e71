"""The vocabulary the daemon's stages exchange: frozen dataclasses, no behaviour.

Stages import this package and never each other (sources → state → rules →
actions / exporter), so each can be tested alone.
"""

from __future__ import annotations

from sentinel.model.alert import ActionSpec, AlertState, RuleStatus, Transition
from sentinel.model.sample import JobKey, Sample

__all__ = ["ActionSpec", "AlertState", "JobKey", "RuleStatus", "Sample", "Transition"]
