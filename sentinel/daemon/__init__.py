"""Wiring and lifecycle: the owner loop, signals, reload, sd_notify. The only place that wires."""
