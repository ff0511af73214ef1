"""VRRP: the pure election engine (machine, timers, trackers, sync groups) and its packet codec."""
