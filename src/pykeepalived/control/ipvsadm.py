"""``ipvsadm -Ln`` layout for the ``GET /lb`` answer (what ``kactl lb`` prints).

Pure: the column widths and number formats are ipvsadm's (``print_title``,
``print_service_entry`` and ``print_largenum`` in ipvsadm.c), so that tools that read
``ipvsadm -Ln`` output read ours. The first line names the dataplane: IPVS's version when
the backend is IPVS, else pykeepalived's version and the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FORWARD_NAMES", "Mode", "largenum", "render"]

Mode = Literal["table", "stats", "rate"]
FORWARD_NAMES: Mapping[str, str] = {"nat": "Masq", "dr": "Route", "tun": "Tunnel"}
"""ipvsadm's names of the forwarding methods."""
_STATS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
_RATES = ("cps", "inpps", "outpps", "inbps", "outbps")
_SCHED_FLAG_ORDER = ("flag-1", "flag-2", "flag-3", "sh-fallback", "sh-port", "mh-fallback")


def largenum(n: int) -> str:
    """ipvsadm's ``print_largenum`` (without ``--exact``): 9 columns, K/M/G/T beyond."""
    if n < 100_000_000:
        return f"{n:9d}"
    for limit, div, unit in (
        (1_000_000_000, 1_000, "K"),
        (100_000_000_000, 1_000_000, "M"),
        (100_000_000_000_000, 1_000_000_000, "G"),
    ):
        if n < limit:
            return f"{n // div:8d}{unit}"
    return f"{n // 1_000_000_000_000:8d}T"


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _service_name(s: Mapping[str, Any]) -> str:
    if s["protocol"] == "fwmark":
        return f"FWM  {s['fwmark']}" + (" IPv6" if s["family"] == "inet6" else "")
    proto = str(s["protocol"]).upper()
    return f"{proto:<4} {_hostport(s['address'], s['port'])}"


def _service_tail(s: Mapping[str, Any]) -> str:
    out = f" {s['scheduler']}"
    flags = [f for f in _SCHED_FLAG_ORDER if f in s.get("flags", ())]
    if flags:
        out += f" ({','.join(flags)})"
    timeout = s.get("persistence_timeout")
    if timeout:
        out += f" persistent {timeout}"
        mask = s.get("persistence_granularity")
        full = "255.255.255.255" if s["family"] == "inet" else 128
        if mask is not None and mask != full:
            out += f" mask {mask}"
        if s.get("persistence_engine"):
            out += f" pe {s['persistence_engine']}"
    if "ops" in s.get("flags", ()):
        out += " ops"
    return out


def _counter(entry: Mapping[str, Any], name: str) -> int:
    stats = entry.get("stats") or {}
    return int(stats.get(name, 0) or 0)


def render(table: Mapping[str, Any], mode: Mode = "table") -> str:
    """The ``GET /lb`` answer as ``ipvsadm -Ln`` (``--stats``: ``stats``, ``--rate``:
    ``rate``) prints it, newline-terminated."""
    if table.get("version"):
        size = table.get("size")
        head = f"IP Virtual Server version {table['version']}"
        head += f" (size={size})" if size is not None else ""
        head += f" [{table['backend']}]" if table.get("backend") != "ipvs" else ""
    else:
        head = f"IP Virtual Server version pykeepalived (backend={table.get('backend')})"
    lines = [head]
    if mode == "table":
        lines.append("Prot LocalAddress:Port Scheduler Flags")
        lines.append("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
    else:
        names = ("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
        if mode == "rate":
            names = ("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
        lines.append(f"{'Prot LocalAddress:Port':<33}" + "".join(f" {n:>8}" for n in names))
        lines.append("  -> RemoteAddress:Port")
    for s in table.get("services", ()):
        name = _service_name(s)
        if mode == "table":
            lines.append(name + _service_tail(s))
        else:
            keys = _STATS if mode == "stats" else _RATES
            lines.append(f"{name:<33}" + "".join(largenum(_counter(s, k)) for k in keys))
        for d in s.get("destinations", ()):
            dname = _hostport(d["address"], d["port"])
            if mode == "table":
                fwd = FORWARD_NAMES.get(d["forward"], d["forward"])
                active, inact = _counter(d, "activeconns"), _counter(d, "inactconns")
                lines.append(f"  -> {dname:<28} {fwd:<7} {d['weight']:<6} {active:<10} {inact:<10}")
            elif mode == "stats":
                counts = "".join(largenum(_counter(d, k)) for k in _STATS)
                lines.append(f"  -> {dname:<28}{counts}")
            else:
                first = "".join(f" {_counter(d, k):8d}" for k in _RATES[:3])
                rest = "".join(largenum(_counter(d, k)) for k in _RATES[3:])
                lines.append(f"  -> {dname:<28}{first}{rest}")
    return "\n".join(lines) + "\n"
