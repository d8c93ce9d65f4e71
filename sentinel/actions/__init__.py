"""Actions: what the daemon does when an alert fires (notify, checkpoint, stop, exec)."""
