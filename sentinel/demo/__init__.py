"""``sentinel demo``: a real small trainer whose encoder collapses, watched and stopped."""
