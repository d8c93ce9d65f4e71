"""``sentinel replay``: back-test rules on finished logs through the daemon's own path."""
