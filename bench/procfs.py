"""What the benchmarks read from ``/proc``: a process's stat fields and its process tree.

Shared by ``bench/checks.py`` and ``bench/idle.py`` (run as scripts: this directory is on
``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["stat_fields", "tree"]


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` from field 3 (state) on, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (by PPID, from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if stat_fields(pid) is not None:
            out.append(pid)
            todo.extend(children.get(pid, ()))
    return out
