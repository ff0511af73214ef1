"""Health checking: pure trackers (timing, retry, rise) and async probes, one per checker kind."""
