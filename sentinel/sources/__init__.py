"""Sources: segments, log tails and processes, turned into samples for the owner loop."""
