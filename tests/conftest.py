"""Shared test configuration: hypothesis profiles (HYPOTHESIS_PROFILE=fast|ci|deep)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("fast", max_examples=30, deadline=None)
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# tests/ipvs needs a kernel with IPVS: on a host without it, tests/integration/test_ipvs_vm.py
# runs that directory inside a VM booted on Debian's kernel; it is not collected here.
collect_ignore_glob = [] if os.path.exists("/proc/net/ip_vs") else ["ipvs/*"]
