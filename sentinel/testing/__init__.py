"""Fakes for the ports (clock, notifier, signaller, process table), for tests."""
