"""``kactl cleanup -f FILE``: remove everything a configuration would have installed.

keepalived leaves its VIPs behind when it is killed with SIGKILL (or crashes); a new daemon
removes them at start, but a host that is not going to run it again needs a way to clean up.
For the configuration in FILE this removes, when present:

* the VRRP addresses of every instance (VIPs and eVIPs), virtual routes and rules, and the
  static addresses, routes and rules (:func:`~pykeepalived.net.addresses.cleanup_stale`);
* the VMAC interfaces of the ``use_vmac`` instances;
* the nftables tables of ``no_accept`` (``global_defs nftables``, default ``keepalived``);
* the load-balancer services of every ``virtual_server``, in the backend the checker would
  choose (``--lb-backend`` / ``lb_backend``), and that backend's own table when it has one.

Each part is done even when another fails; the result lists what was removed and what failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykeepalived.config.model.root import Config
    from pykeepalived.net.firewall_plan import Family

__all__ = ["CleanupReport", "cleanup"]

log = logging.getLogger("pykeepalived.cleanup")

FAMILIES: tuple[Family, ...] = ("ip", "ip6")


@dataclass(slots=True)
class CleanupReport:
    """What :func:`cleanup` removed, and what it could not."""

    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


async def cleanup(
    config: Config, *, lb_backend: str | None = None, step_limit: float = 10.0
) -> CleanupReport:
    """Remove what ``config`` would have installed (see the module doc); each part gets
    ``step_limit`` seconds."""
    report = CleanupReport()
    steps = (
        ("addresses, routes and rules", _addresses(config, report)),
        ("VMAC interfaces", _vmacs(config, report)),
        ("no_accept firewall", _firewall(config, report)),
        ("load balancer", _load_balancer(config, lb_backend, report)),
    )
    for what, step in steps:
        try:
            async with asyncio.timeout(step_limit):
                await step
        except TimeoutError:
            report.failed.append(f"{what}: timed out")
        except Exception as exc:  # one part failing must not stop the others
            report.failed.append(f"{what}: {exc}")
    return report


async def _addresses(config: Config, report: CleanupReport) -> None:
    if not config.has_vrrp:
        return
    from pykeepalived.net.addresses import cleanup_stale
    from pykeepalived.net.netlink import Netlink

    nl = Netlink()
    try:
        result = await cleanup_stale(config, nl, include_static=True, skip_owners=False)
    finally:
        await nl.aclose()
    report.removed.extend(str(change) for change in result.applied)
    report.failed.extend(f"{change or 'reading the state'}: {why}" for change, why in result.failed)


async def _vmacs(config: Config, report: CleanupReport) -> None:
    from pykeepalived.net.vmac_plan import plan_vmacs

    names = [spec.ifname for spec in plan_vmacs(config).values()]
    if names:
        report.removed.extend(await asyncio.to_thread(_delete_links, names))


def _delete_links(names: list[str]) -> list[str]:
    """Delete the macvlan/ipvlan interfaces named ``names`` that exist."""
    from pyroute2 import IPRoute

    removed = []
    with IPRoute() as ipr:
        for name in names:
            links: list[Any] = list(ipr.link_lookup(ifname=name))
            if not links:
                continue
            (link,) = ipr.get_links(links[0])
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind not in ("macvlan", "ipvlan"):
                log.warning("%s is a %s interface, not a VMAC: left in place", name, kind)
                continue
            ipr.link("del", index=links[0])
            removed.append(f"delete VMAC interface {name}")
    return removed


async def _firewall(config: Config, report: CleanupReport) -> None:
    if not config.vrrp.vrrp_instances:
        return
    from pykeepalived.net.firewall_plan import FirewallSpec, cleanup_commands
    from pykeepalived.nft.libnft import Nft

    spec = FirewallSpec.from_globals(config.global_defs)

    def run() -> list[str]:
        nft = Nft()
        try:
            have = nft.run([{"list": {"tables": {}}}])
            tables = {
                (t["table"]["family"], t["table"]["name"])
                for t in have.get("nftables", [])
                if "table" in t
            }
            families: list[Family] = [f for f in FAMILIES if (f, spec.table) in tables]
            if families:
                nft.run(cleanup_commands(spec, families))
            return [f"delete table {f} {spec.table}" for f in families]
        finally:
            nft.close()

    report.removed.extend(await asyncio.to_thread(run))


async def _load_balancer(config: Config, setting: str | None, report: CleanupReport) -> None:
    if not config.has_checker:
        return
    from pykeepalived.lb.choose import choose_backend, make_backend
    from pykeepalived.lb.desired import services_for
    from pykeepalived.lb.plan import DelService

    name, _ = await choose_backend(setting or config.global_defs.lb_backend)
    backend = make_backend(
        name, config=config, global_defs=config.global_defs, delete_on_close=True
    )
    try:
        groups = {g.name: g for g in config.lvs.virtual_server_groups}
        ours = {s.key for vs in config.lvs.virtual_servers for s in services_for(vs, groups)}
        table = await backend.read()
        for key in sorted((k for k in table.services if k in ours), key=str):
            change = DelService(key)
            await backend.apply(change)
            report.removed.append(f"{name}: {change}")
    finally:
        with contextlib.suppress(Exception):
            await backend.aclose()
