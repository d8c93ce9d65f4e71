"""Offline collapse reports: a collector dump in, ``report.json`` and ``report.html`` out."""
