"""``sentinel status``: what the run directory holds, read straight from the segments."""
