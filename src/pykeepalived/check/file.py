"""FILE_CHECK: a number in a ``track_file`` adjusts the real server's weight (reference §3.11).

The file is read as VRRP's ``track_file`` reads it (:mod:`pykeepalived.trackfile`: C
``strtol`` of its first 127 bytes; missing, unreadable or empty is 0), but the value is not
clamped: a number outside the 32-bit range is ignored (the previous value stays), as
keepalived does. Then, with ``m`` = -1 for ``reverse`` and 1 otherwise:

* weight 0: a non-zero value is a failure (with ``reverse``: a zero value is);
* otherwise the contribution ``value * weight * m`` is added to the real server's weight; a
  contribution ≤ -2^31 is a failure, one above 2^31-1 counts as 2^31-1.

The weight and ``reverse`` are the FILE_CHECK's own, or the track_file's when the FILE_CHECK
gives none or weight 0 (keepalived treats a FILE_CHECK ``weight 0`` as not set).

FILE_CHECK has no timing keywords: keepalived reacts to the file changing (inotify). A probe
reads the file (a stat, an open and a read of 127 bytes: cheap), so the runner can call it
often (VRRP polls its track files every 0.5 s) and apply each result at once, without
retries. ``init_file`` is written by :func:`pykeepalived.trackfile.write_init_files` at
start-up, not by the probe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pykeepalived.check.base import CheckResult, register
from pykeepalived.trackfile import checker_value, read_head

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pykeepalived.config.model.lvs import FileCheck
    from pykeepalived.config.model.vrrp import TrackFile

__all__ = ["WEIGHT_MAX", "FileProbe", "effective_weight", "file_result"]

log = logging.getLogger(__name__)

WEIGHT_MAX = 2**31 - 1
"""IPVS_WEIGHT_MAX: the largest contribution; one below its negative is a failure."""


def effective_weight(spec: FileCheck, track_file: TrackFile) -> tuple[int, bool]:
    """(weight, reverse) of a FILE_CHECK: its own, or the track_file's if it has none or 0."""
    if spec.weight:
        return spec.weight, spec.reverse
    return track_file.weight, track_file.weight_reverse


def file_result(value: int, weight: int, reverse: bool) -> CheckResult:
    """What ``value`` read from the file means for the checker (pure)."""
    if weight == 0:
        failed = value == 0 if reverse else value != 0
        return CheckResult(ok=not failed, detail=f"value {value}", weight=0)
    contribution = value * weight * (-1 if reverse else 1)
    if contribution < -WEIGHT_MAX:
        return CheckResult(ok=False, detail=f"value {value}: weight {contribution}", weight=0)
    return CheckResult(ok=True, detail=f"value {value}", weight=min(contribution, WEIGHT_MAX))


class FileProbe:
    """One FILE_CHECK of one real server."""

    def __init__(self, spec: FileCheck, *, track_file: TrackFile) -> None:
        if track_file.name != spec.track_file:
            raise ValueError(
                f"FILE_CHECK wants track_file {spec.track_file!r}, not {track_file.name!r}"
            )
        self.spec = spec
        self.track_file = track_file
        self.weight, self.reverse = effective_weight(spec, track_file)
        self.value = 0
        """The last value read (0 before the first read)."""

    @property
    def steps(self) -> int:
        """One step."""
        return 1

    def check(self) -> CheckResult:
        """Read the file and judge its value (blocking: :meth:`probe` calls it in a worker
        thread)."""
        path = self.track_file.file
        value = checker_value(read_head(path))
        if value is None:
            log.info("track_file %s: invalid number in %s - ignoring", self.track_file.name, path)
            value = self.value
        self.value = value
        return file_result(value, self.weight, self.reverse)

    async def probe(self, step: int = 0) -> CheckResult:
        """The file's verdict now."""
        return await asyncio.to_thread(self.check)


@register("FILE_CHECK")
def _factory(spec: FileCheck, *, track_files: Mapping[str, TrackFile], **_: Any) -> FileProbe:
    try:
        track_file = track_files[spec.track_file]
    except KeyError:
        raise ValueError(f"FILE_CHECK: no track_file named {spec.track_file!r}") from None
    return FileProbe(spec, track_file=track_file)
