"""Process scheduling settings: keepalived's ``vrrp_*``/``checker_*`` tuning keywords, plus
freezing the start-up heap out of the garbage collector.

``*_priority`` (nice), ``*_no_swap`` (``mlockall``), ``*_rt_priority`` (``SCHED_RR``),
``*_rlimit_rttime`` (``RLIMIT_RTTIME``, keepalived's default 10 ms when a realtime priority is
set, see :data:`RTTIME_HARD`) and ``*_cpu_affinity``.
A setting the kernel refuses is logged and skipped: it never stops the daemon.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import resource
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykeepalived.config.model.globals import ProcessTuning

__all__ = ["DEFAULT_RLIMIT_RTTIME", "apply_tuning", "freeze_heap"]

log = logging.getLogger(__name__)

DEFAULT_RLIMIT_RTTIME = 10_000
"""µs of realtime CPU without a blocking call before SIGXCPU (keepalived's default)."""
RTTIME_HARD = 2_000_000
"""µs before the kernel's SIGKILL. keepalived uses the soft limit for both; an interpreter
can spend more than 10 ms in one go (a garbage collection), so SIGXCPU at the soft limit is
ignored and the kernel stops a realtime loop that runs away for 2 s."""
_MCL_CURRENT, _MCL_FUTURE = 1, 2


def apply_tuning(tuning: ProcessTuning, process: str) -> list[str]:
    """Apply ``tuning`` to this process; returns what was done (for the log)."""
    done: list[str] = []

    def attempt(what: str, action: object) -> None:
        try:
            if callable(action):
                action()
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot set %s: %s", process, what, exc)
        else:
            done.append(what)

    if tuning.priority is not None:
        attempt(
            f"nice {tuning.priority}", lambda: os.setpriority(os.PRIO_PROCESS, 0, tuning.priority)
        )
    if tuning.cpu_affinity:
        attempt(f"CPU affinity {list(tuning.cpu_affinity)}",
                lambda: os.sched_setaffinity(0, set(tuning.cpu_affinity)))  # fmt: skip
    if tuning.rt_priority is not None:
        soft = tuning.rlimit_rttime or DEFAULT_RLIMIT_RTTIME
        hard = max(soft, RTTIME_HARD)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)  # the soft limit: the kernel warns
        attempt(f"RLIMIT_RTTIME {soft} us",
                lambda: resource.setrlimit(resource.RLIMIT_RTTIME, (soft, hard)))  # fmt: skip
        param = os.sched_param(tuning.rt_priority)
        attempt(f"SCHED_RR priority {tuning.rt_priority}",
                lambda: os.sched_setscheduler(0, os.SCHED_RR, param))  # fmt: skip
    if tuning.no_swap:
        attempt("memory locked (no swap)", _mlockall)
    if done:
        log.info("%s scheduling: %s", process, ", ".join(done))
    return done


def _mlockall() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def freeze_heap() -> None:
    """Collect once, then move everything alive into the permanent generation: the objects
    of the start-up (configuration, libraries) are never scanned again, so a full collection
    later costs what the running state costs, not milliseconds of timer delay."""
    gc.collect()
    gc.freeze()
