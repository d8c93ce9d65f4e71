"""The daemon's configuration: typed, frozen, loaded with positions."""

from __future__ import annotations

from sentinel.config.loader import Config, ExporterConfig, NotifyConfig, StopConfig, load_config

__all__ = ["Config", "ExporterConfig", "NotifyConfig", "StopConfig", "load_config"]
