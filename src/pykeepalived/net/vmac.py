"""VMAC interfaces (keepalived's vrrp_vmac.c and vrrp_if_config.c): create, configure,
bring up and delete the macvlans that :mod:`pykeepalived.net.vmac_plan` decides.

:class:`VmacManager` talks to the kernel over its own pyroute2 ``AsyncIPRoute`` socket
(every request bounded by ``request_timeout``) and writes sysctls under ``/proc/sys``.
Per VMAC, at start-up (and for an instance a reload adds, :meth:`VmacManager.add`):

1. an interface of that name that is a macvlan on the right parent with the right MAC is
   reused (a killed daemon leaves it behind; the forced clean-up removed its VIPs), another
   macvlan of that name is deleted and made again, anything else is an error;
2. the macvlan is created down, in private mode (so that the adverts of a peer, which
   carry our own virtual MAC as their source, are delivered to it);
3. link-local address generation is turned off, then the sysctls of the plan are written
   (``all.rp_filter`` once, for the first IPv4 VMAC), recording every value changed;
4. an IPv6 VMAC gets the advert source (the parent's link-local address), ``nodad`` and
   deprecated so that nothing else picks it as a source;
5. the link goes up.

:meth:`VmacManager.remove` deletes the interfaces and writes back every recorded value
(keepalived 2.2.7 leaves the parent's ``arp_ignore``/``arp_filter`` changed; we restore
them too, as its code intends). Errors become :class:`VmacFailure`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkDecodeError, NetlinkError

from pykeepalived.errors import PykeepalivedError
from pykeepalived.net.vmac_plan import (
    Sysctl,
    SysctlChange,
    VmacSpec,
    ipv4_conf,
    parent_sysctls,
    rp_filter_changes,
    vmac_sysctls,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from ipaddress import IPv6Address

__all__ = ["SysctlFiles", "VmacFailure", "VmacLink", "VmacManager"]

log = logging.getLogger(__name__)

_IFA_F_NODAD = 0x02
_ADDR_GEN_MODE_NONE = ("IFLA_INET6_ADDR_GEN_MODE", 1)  # IN6_ADDR_GEN_MODE_NONE
_LIBRARY_ERRORS = (NetlinkError, NetlinkDecodeError, OSError)
_GONE = frozenset({errno.ENODEV, errno.ENOENT})


class VmacFailure(PykeepalivedError):
    """A VMAC interface could not be created, configured or deleted."""


# ---- sysctls ----------------------------------------------------------------------------------


class SysctlFiles:
    """Integer sysctls under ``root`` (``/proc/sys``; tests use a directory of their own)."""

    def __init__(self, root: Path = Path("/proc/sys")) -> None:
        self.root = root

    def read(self, path: str) -> int | None:
        """The value, None when the sysctl does not exist or is not an integer."""
        try:
            return int((self.root / path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def write(self, path: str, value: int) -> None:
        """Write ``value``; raises :class:`VmacFailure`."""
        try:
            (self.root / path).write_text(f"{value}\n")
        except OSError as exc:
            raise VmacFailure(f"cannot set {path.replace('/', '.')}: {exc.strerror}") from exc

    def ipv4_interfaces(self) -> list[str]:
        """The interfaces ``net/ipv4/conf`` lists (without ``all`` and ``default``)."""
        try:
            names = [p.name for p in (self.root / "net/ipv4/conf").iterdir()]
        except OSError:
            return []
        return sorted(n for n in names if n not in ("all", "default"))


# ---- the manager ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VmacLink:
    """A VMAC in place: its spec, its ifindex, and whether we created it (or reused it)."""

    spec: VmacSpec
    index: int
    created: bool


@dataclass(frozen=True, slots=True)
class _Link:
    index: int
    kind: str | None
    mac: str | None
    parent: int | None


def _failure(what: str, exc: BaseException) -> VmacFailure:
    if isinstance(exc, NetlinkError):
        return VmacFailure(f"{what}: {errno.errorcode.get(exc.code, exc.code)}: {exc}")
    if isinstance(exc, OSError):
        return VmacFailure(f"{what}: {exc.strerror or exc}")
    return VmacFailure(f"{what}: {type(exc).__name__}: {exc}")


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, NetlinkError):
        return int(exc.code)
    if isinstance(exc, OSError):
        return exc.errno
    return None


def _parse_link(msg: Any) -> tuple[str, _Link]:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    mac = msg.get_attr("IFLA_ADDRESS")
    parent = msg.get_attr("IFLA_LINK")
    return str(msg.get_attr("IFLA_IFNAME")), _Link(
        index=int(msg["index"]),
        kind=str(kind) if kind else None,
        mac=str(mac).lower() if mac else None,
        parent=int(parent) if parent else None,
    )


async def _collect(result: Any) -> list[Any]:
    """pyroute2 answers with a list or an async iterator, depending on the request."""
    if hasattr(result, "__aiter__"):
        return [msg async for msg in result]
    return list(result)


class VmacManager:
    """Makes the VMACs of ``specs`` and removes them again."""

    def __init__(
        self,
        specs: Iterable[VmacSpec],
        *,
        sysctl: SysctlFiles | None = None,
        request_timeout: float = 5.0,
    ) -> None:
        self.specs = tuple(specs)
        self._sysctl = sysctl or SysctlFiles()
        self._timeout = request_timeout
        self._links: list[VmacLink] = []
        self._changes: list[SysctlChange] = []
        self._rp_filter_done = False

    @property
    def links(self) -> tuple[VmacLink, ...]:
        """The VMACs in place, in the order they were made."""
        return tuple(self._links)

    @property
    def changes(self) -> tuple[SysctlChange, ...]:
        """The sysctls changed outside the VMACs (written back by :meth:`remove`)."""
        return tuple(self._changes)

    async def _call(self, ipr: Any, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await _collect(await getattr(ipr, method)(*args, **kwargs))
        except TimeoutError as exc:
            raise VmacFailure(f"{what}: timed out after {self._timeout:g} s") from exc

    async def _open(self) -> Any:
        ipr: Any = None
        try:
            ipr = AsyncIPRoute()
            await ipr.setup_endpoint()
        except _LIBRARY_ERRORS as exc:
            if ipr is not None:
                ipr.close()
            raise _failure("open netlink socket", exc) from exc
        return ipr

    async def setup(self, link_locals: Mapping[str, IPv6Address] | None = None) -> None:
        """Make every VMAC (``link_locals``: the advert source of each IPv6 instance, by
        instance name). On failure what was done so far stays recorded: call
        :meth:`remove` to undo it."""
        if not self.specs:
            return
        ipr = await self._open()
        try:
            for spec in self.specs:
                await self._make(ipr, spec, (link_locals or {}).get(spec.instance))
        except _LIBRARY_ERRORS as exc:
            raise _failure("setting up VMAC interfaces", exc) from exc
        finally:
            ipr.close()

    async def add(
        self, specs: Iterable[VmacSpec], link_locals: Mapping[str, IPv6Address] | None = None
    ) -> None:
        """Make the VMACs of instances a reload added (as :meth:`setup`; :meth:`remove`
        deletes them with the others)."""
        specs = tuple(specs)
        if not specs:
            return
        self.specs += specs
        ipr = await self._open()
        try:
            for spec in specs:
                await self._make(ipr, spec, (link_locals or {}).get(spec.instance))
        except _LIBRARY_ERRORS as exc:
            raise _failure("setting up VMAC interfaces", exc) from exc
        finally:
            ipr.close()

    async def delete(self, ifnames: Iterable[str]) -> None:
        """Delete the VMACs ``ifnames`` now (a reload removed their instances); the
        sysctls changed outside them are written back by :meth:`remove`, at the end."""
        names = set(ifnames)
        gone = [link for link in self._links if link.spec.ifname in names]
        if not gone:
            return
        self._links = [link for link in self._links if link.spec.ifname not in names]
        self.specs = tuple(s for s in self.specs if s.ifname not in names)
        ipr = await self._open()
        try:
            for link in gone:
                await self._delete(ipr, link)
        finally:
            ipr.close()

    async def _links_now(self, ipr: Any) -> dict[str, _Link]:
        return dict(map(_parse_link, await self._call(ipr, "dump links", "link", "dump")))

    async def _make(self, ipr: Any, spec: VmacSpec, link_local: IPv6Address | None) -> None:
        name = f"VMAC interface {spec.ifname}"
        links = await self._links_now(ipr)
        parent = links.get(spec.parent)
        if parent is None:
            raise VmacFailure(f"({spec.instance}) {name}: no interface {spec.parent}")
        old = links.get(spec.ifname)
        index: int | None = None
        if old is not None:
            if old.kind != "macvlan":
                raise VmacFailure(
                    f"({spec.instance}) {spec.ifname} exists and is not a VMAC"
                    f" (kind {old.kind or 'none'}); choose another name with use_vmac NAME"
                )
            if old.mac == spec.mac and old.parent == parent.index:
                index = old.index
                log.info("(%s) Using the existing VMAC interface %s", spec.instance, spec.ifname)
            else:
                log.info(
                    "(%s) Removing old VMAC interface %s due to conflicting interface or MAC",
                    spec.instance,
                    spec.ifname,
                )
                await self._call(ipr, f"delete {name}", "link", "del", index=old.index)
        if index is None:
            args: dict[str, Any] = {
                "ifname": spec.ifname,
                "kind": "macvlan",
                "link": parent.index,
                "macvlan_mode": "private",
                "address": spec.mac,
            }
            if spec.group is not None:
                args["group"] = spec.group
            await self._call(ipr, f"create {name}", "link", "add", **args)
            made = (await self._links_now(ipr)).get(spec.ifname)
            if made is None:
                raise VmacFailure(f"({spec.instance}) {name} vanished after its creation")
            index = made.index
            log.info("(%s): Success creating VMAC interface %s", spec.instance, spec.ifname)
        self._links.append(VmacLink(spec, index, created=old is None or old.index != index))
        # no link-local address from the virtual MAC (RFC 5798 §7.4): the same on every router
        await self._call(
            ipr,
            f"disable link-local address generation on {spec.ifname}",
            "link",
            "set",
            index=index,
            IFLA_AF_SPEC={"attrs": [("AF_INET6", {"attrs": [_ADDR_GEN_MODE_NONE]})]},
        )
        if spec.family == 4 and not self._rp_filter_done:
            self._clear_rp_filter(exclude={s.ifname for s in self.specs if s.family == 4})
        for setting in vmac_sysctls(spec):
            self._sysctl.write(setting.path, setting.value)
        for setting in parent_sysctls(spec):
            self._set_recorded(setting)
        if spec.family == 6 and link_local is not None:
            await self._add_link_local(ipr, spec, index, link_local)
        await self._call(ipr, f"bring {spec.ifname} up", "link", "set", index=index, state="up")

    async def _add_link_local(
        self, ipr: Any, spec: VmacSpec, index: int, address: IPv6Address
    ) -> None:
        try:
            await self._call(
                ipr,
                f"add {address} to {spec.ifname}",
                "addr",
                "add",
                index=index,
                family=socket.AF_INET6,
                local=str(address),
                address=str(address),
                prefixlen=64,
                flags=_IFA_F_NODAD,
                preferred_lft=0,
            )
        except _LIBRARY_ERRORS as exc:
            if _code(exc) != errno.EEXIST:
                raise
        log.info("Assigned address %s for interface %s", address, spec.ifname)

    def _set_recorded(self, setting: Sysctl) -> None:
        """Write ``setting`` and record the old value, unless it holds already."""
        old = self._sysctl.read(setting.path)
        if old is None or old == setting.value:
            if old is None:
                log.warning("sysctl %s not found", setting.path.replace("/", "."))
            return
        self._sysctl.write(setting.path, setting.value)
        self._changes.append(SysctlChange(setting.path, old, setting.value))

    def _clear_rp_filter(self, *, exclude: set[str]) -> None:
        """keepalived's clear_rp_filter: ``all.rp_filter`` to 0 without weakening any
        other interface."""
        self._rp_filter_done = True
        all_value = self._sysctl.read(ipv4_conf("all", "rp_filter"))
        default_value = self._sysctl.read(ipv4_conf("default", "rp_filter"))
        if not all_value or default_value is None:
            return
        current = {
            name: value
            for name in self._sysctl.ipv4_interfaces()
            if name not in exclude
            and (value := self._sysctl.read(ipv4_conf(name, "rp_filter"))) is not None
        }
        for change in rp_filter_changes(all_value, default_value, current):
            self._sysctl.write(change.path, change.new)
            self._changes.append(change)
            if change.path.split("/")[3] in ("all", "default"):
                log.info(
                    "NOTICE: setting sysctl %s from %d to %d",
                    change.path.replace("/", "."),
                    change.old,
                    change.new,
                )

    async def remove(self) -> None:
        """Delete every VMAC made or reused, then write back the recorded sysctls. Carries
        on after an error (logged); nothing is left recorded afterwards."""
        links, self._links = self._links, []
        changes, self._changes = self._changes, []
        if links:
            try:
                ipr = await self._open()
            except VmacFailure as exc:
                log.warning("cannot delete the VMAC interfaces: %s", exc)
            else:
                try:
                    for link in reversed(links):
                        await self._delete(ipr, link)
                finally:
                    ipr.close()
        gone = {link.spec.ifname for link in links}
        for change in reversed(changes):
            if change.path.split("/")[3] in gone:
                continue
            try:
                self._sysctl.write(change.path, change.old)
            except VmacFailure as exc:
                log.debug("restoring: %s", exc)  # e.g. the interface went away
                continue
            if change.path.split("/")[3] in ("all", "default"):
                log.info(
                    "NOTICE: resetting sysctl %s to %d", change.path.replace("/", "."), change.old
                )
        self._rp_filter_done = False

    async def _delete(self, ipr: Any, link: VmacLink) -> None:
        spec = link.spec
        try:
            await self._call(ipr, f"delete {spec.ifname}", "link", "del", index=link.index)
        except (VmacFailure, *_LIBRARY_ERRORS) as exc:
            if _code(exc) in _GONE:
                return
            log.warning(
                "(%s) Error removing VMAC interface %s: %s", spec.instance, spec.ifname, exc
            )
            return
        log.info("(%s) Success removing VMAC interface %s", spec.instance, spec.ifname)
