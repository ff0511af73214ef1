"""Resolution of one ``virtual_server``: the finalizer that builds its real servers and checkers.

The pending ``real_server`` and checker blocks (:class:`~._lvs_checkers.Pending`) are resolved
in one pass: ports, address families, forwarding methods, weights and the inheritance of the
timing keywords (checker → real server → virtual server → built-in default), so that every
checker carries effective numbers. Service-level rules (protocol, persistence, scheduler flags,
sorry server, quorum) are checked here too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pykeepalived.config.keywords._lvs_convert import NAT
from pykeepalived.config.model.lvs import (
    AddressService,
    BfdCheck,
    DnsCheck,
    FileCheck,
    FwmarkService,
    GroupService,
    HttpGetCheck,
    LvsMethod,
    MiscCheck,
    PingCheck,
    RealServer,
    SendExpectCheck,
    SmtpCheck,
    SorryServer,
    SslGetCheck,
    TcpCheck,
    UdpCheck,
)

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.keywords._lvs_checkers import Pending
    from pykeepalived.config.model.common import IPAddress
    from pykeepalived.config.schema import Ctx

__all__ = ["finalize_virtual_server"]


def finalize_virtual_server(
    ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]
) -> bool:
    """The ``virtual_server`` finalizer: False drops the block (no usable real server)."""
    return _VsResolver(ctx, stmt, values, src).run()


_DEFAULT_RETRY: dict[type, int] = {MiscCheck: 0, DnsCheck: 3}
_DEFAULT_DBR: dict[type, float | None] = {HttpGetCheck: 3.0, SslGetCheck: 3.0, DnsCheck: None}
_RS_TIMING = frozenset(
    {"retry", "delay_before_retry", "warmup", "connect_timeout", "delay_loop", "alpha", "rise"}
)
_CONNECTED = frozenset(
    {TcpCheck, HttpGetCheck, SslGetCheck, SmtpCheck, DnsCheck, UdpCheck, PingCheck, SendExpectCheck}
)
_HOST_CONN = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark")


def _family(addr: IPAddress) -> str:
    return "inet" if addr.version == 4 else "inet6"


_ADDR_TYPE: dict[str | None, type | None] = {
    "inet": ipaddress.IPv4Address,
    "inet6": ipaddress.IPv6Address,
    None: None,
}


class _VsResolver:
    """Checks one virtual server and builds its real servers and checkers (effective values)."""

    def __init__(self, ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> None:
        self.ctx = ctx
        self.stmt = stmt
        self.values = values
        self.src = src
        self.objects = ctx.srcmap.objects
        self.defaults: dict[tuple[type, tuple[Any, ...]], dict[str, Any]] = {}
        self.tcp_defaults: dict[str, Any] | None = None
        self.vs_timing: tuple[Any, ...] = ()

    def warn(self, message: str, *, hint: str | None = None) -> None:
        self.ctx.warning(
            self.stmt, f"virtual_server {' '.join(self.stmt.args)}: {message}", hint=hint
        )

    def run(self) -> bool:
        v = self.values
        service = v["service"]
        self.fwmark = type(service) is FwmarkService
        self.group = type(service) is GroupService
        self.vs_port = service.port if type(service) is AddressService else 0
        family = _family(service.address) if type(service) is AddressService else None
        wanted = v.get("ip_family")
        if wanted is not None and family is not None and wanted != family:
            self.ctx.error(
                self.src["ip_family"],
                f"ip_family {wanted} conflicts with the"
                f" {family} address of the virtual server; ignored",
                arg=0,
            )
            del v["ip_family"]
            wanted = None
        self.family = family or wanted
        self._service_options()
        self.addr_type = _ADDR_TYPE[self.family]
        self.method: LvsMethod = v.get("lvs_method", NAT)
        self.method_used = False
        sorry = self._sorry_server()
        servers = self._real_servers()
        if self.method_used and "lvs_method" not in v:
            self.warn(
                "no lvs_method (lb_kind) set; using NAT",
                hint="add 'lvs_method NAT' (or DR/TUN) to the virtual_server",
            )
        if not servers:
            self.warn(
                "has no real servers; keepalived ignores it, so it is left out",
                hint="add a real_server block",
            )
            return False
        if sorry is not None:
            sorry = self._sorry_matches_rs(sorry, servers)
        v["sorry_server"] = sorry
        v["real_servers"] = servers
        if self.family is not None:
            v["ip_family"] = self.family
        self._quorum(servers)
        return True

    # -- service-level options -------------------------------------------------------------------

    def _service_options(self) -> None:
        v, src = self.values, self.src
        if "lvs_sched" not in v:
            self.warn(
                "no lvs_sched (lb_algo) set; using wlc",
                hint="add 'lvs_sched wlc' (or rr, wrr, …) to the virtual_server",
            )
        if self.fwmark:
            if "protocol" in v:
                self.ctx.warning(src["protocol"], "protocol is ignored for a fwmark service")
            v["protocol"] = None
            if v.get("ha_suspend"):
                self.ctx.warning(
                    src["ha_suspend"],
                    "ha_suspend cannot be used with a fwmark service; it is cleared",
                )
                v["ha_suspend"] = False
        elif not self.group:
            if "protocol" not in v:
                self.warn(
                    "no protocol set - defaulting to UDP (as keepalived does)",
                    hint="add 'protocol TCP' if this is a TCP service",
                )
            elif v.get("ops") and v["protocol"] != "UDP":
                self.ctx.warning(
                    src["ops"], "one-packet scheduling (ops) needs protocol UDP; it is cleared"
                )
                v["ops"] = False
            if not self.vs_port and "persistence_timeout" not in v:
                self.warn(
                    "port 0 is only valid for a persistent service; setting"
                    " persistence_timeout 360",
                    hint="add 'persistence_timeout N' or give the service a port",
                )
                v["persistence_timeout"] = 360
        sched = v.get("lvs_sched", "wlc")
        for name, needs in (
            ("sh_port", "sh"),
            ("sh_fallback", "sh"),
            ("mh_port", "mh"),
            ("mh_fallback", "mh"),
        ):
            if v.get(name) and sched != needs:
                self.ctx.warning(
                    src[name],
                    f"'{src[name].keyword}' only applies to the {needs} scheduler; ignored",
                )
                v[name] = False
        gran = v.get("persistence_granularity")
        if gran is not None:
            is_v4 = type(gran) is ipaddress.IPv4Address
            if self.family is not None and is_v4 != (self.family == "inet"):
                self.ctx.error(
                    src["persistence_granularity"],
                    "persistence_granularity must be"
                    " a netmask for IPv4 and a prefix length for IPv6; ignored",
                    arg=0,
                )
                del v["persistence_granularity"]
            else:
                if self.family is None:
                    self.family = "inet" if is_v4 else "inet6"
                v.setdefault("persistence_timeout", 360)

    # -- sorry server ------------------------------------------------------------------------------

    def _sorry_server(self) -> SorryServer | None:
        v, src = self.values, self.src
        inhibit = v.pop("sorry_server_inhibit", False)
        method = v.pop("sorry_server_lvs_method", None)
        if "sorry_server" not in v:
            for key in ("sorry_server_inhibit", "sorry_server_lvs_method"):
                if key in src:
                    self.ctx.warning(src[key], f"'{key}' without sorry_server; ignored")
            return None
        address, port = v.pop("sorry_server")
        stmt = src["sorry_server"]
        if method is None:
            method = self.method
            self.method_used = True
        if not self._family_ok(address, method, stmt, "sorry server"):
            return None
        port = self._port(port, method, stmt, "sorry server")
        return SorryServer(address, port, inhibit, method)

    def _family_ok(self, address: IPAddress, method: LvsMethod, stmt: Stmt, what: str) -> bool:
        if method.method == "TUN" or self.group:
            return True
        fam = _family(address)
        if self.family is None:
            self.family = fam
            self.addr_type = type(address)
        elif fam != self.family:
            self.ctx.error(
                stmt,
                f"the {what} {address} is {fam} but the virtual server is"
                f" {self.family}; the {what} is ignored",
                arg=0,
                hint="only TUN forwarding can mix address families",
            )
            return False
        return True

    def _port(self, port: int | None, method: LvsMethod, stmt: Stmt, what: str) -> int:
        """keepalived's port rules for a real or sorry server (reference §3.10)."""
        if method.method == "NAT":
            if port is None:
                return 0 if self.fwmark or self.group else self.vs_port
            return port
        if self.group:
            return port or 0
        if self.fwmark:
            if port:
                self.ctx.warning(
                    stmt,
                    f"the {what} port is ignored for a fwmark service that"
                    f" uses {method.method}; cleared",
                    arg=1,
                )
            return 0
        if port is not None and port != self.vs_port:
            self.ctx.warning(
                stmt,
                f"the {what} port {port} differs from the virtual server port"
                f" {self.vs_port}; {method.method} cannot change ports, so"
                f" {self.vs_port} is used",
                arg=1,
                hint=f"use port {self.vs_port}, or lvs_method NAT",
            )
        return self.vs_port

    # -- real servers and checkers ----------------------------------------------------------------

    def _real_servers(self) -> list[RealServer]:
        """Build the real servers and their checkers: the hot path of a large configuration."""
        v = self.values
        pending: list[Pending] = v.get("real_servers", [])
        objects = self.objects
        ctx = self.ctx
        method = self.method
        rs_defaults = {
            "weight": v.get("weight", 1),
            "inhibit_on_failure": v.get("inhibit_on_failure", False),
            "alpha": v.get("alpha", False),
            "lvs_method": method,
            "slow_start": v.get("slow_start", 0.0),
        }
        vs_timing = self.vs_timing = (
            v.get("retry"),
            v.get("delay_before_retry"),
            v.get("warmup"),
            v.get("connect_timeout", 5.0),
            v.get("delay_loop", 60.0),
            v.get("alpha", False),
            v.get("rise", 1),
        )
        vs_vhost = v.get("virtualhost")
        plain_nat = method.method == "NAT" and not self.fwmark and not self.group
        vs_port = self.vs_port
        seen: dict[tuple[type, int, int], Stmt] = {}
        servers: list[RealServer] = []
        add = ctx.srcmap.add
        for p in pending:
            stmt, fields = objects.pop(id(p))
            rv = p.copy()
            p.clear()  # the source map keeps the pending object: free its values
            address = rv["address"]
            if "lvs_method" in rv:
                m = rv["lvs_method"]
            else:
                m = method
                self.method_used = True
            if type(address) is not self.addr_type and not self._family_ok(
                address, m, stmt, "real server"
            ):
                self._forget(rv)
                continue
            port = rv["port"]
            if m is method and plain_nat:
                if port is None:
                    port = vs_port
            else:
                port = self._port(port, m, stmt, "real server")
            key = (type(address), int(address), port)
            first = seen.get(key)
            if first is not None:
                ctx.error(
                    stmt,
                    f"real server {address} port {port} is already defined at line"
                    f" {first.lineno} of this virtual_server; the duplicate is ignored",
                    arg=0,
                )
                self._forget(rv)
                continue
            seen[key] = stmt
            values = {**rs_defaults, **rv}
            values["port"] = port
            checks = rv.get("checkers")
            if checks:
                if rv.keys().isdisjoint(_RS_TIMING):
                    timing = vs_timing
                else:
                    timing = (
                        rv.get("retry", vs_timing[0]),
                        rv.get("delay_before_retry", vs_timing[1]),
                        rv.get("warmup", vs_timing[2]),
                        rv.get("connect_timeout", vs_timing[3]),
                        rv.get("delay_loop", vs_timing[4]),
                        values["alpha"],
                        rv.get("rise", vs_timing[6]),
                    )
                values["checkers"] = self._checkers(
                    checks, timing, address, port, rv.get("virtualhost", vs_vhost)
                )
            rs = RealServer(**values)
            add(rs, stmt, fields)
            servers.append(rs)
        return servers

    def _defaults(self, cls: type, timing: tuple[Any, ...]) -> dict[str, Any]:
        """Inherited values of a checker class under the given RS/VS timing (cached)."""
        key = (cls, timing)
        found = self.defaults.get(key)
        if found is not None:
            return found
        retry, dbr, warmup, ct, dl, alpha, rise = timing
        d: dict[str, Any] = {"alpha": alpha}
        if cls is not BfdCheck:
            d["rise"] = rise
            d["delay_loop"] = dl
            d["retry"] = _DEFAULT_RETRY.get(cls, 1) if retry is None else retry
            d["warmup"] = dl if warmup is None else warmup
            if dbr is None:
                dbr = _DEFAULT_DBR.get(cls, 1.0)
            d["delay_before_retry"] = dl if dbr is None else dbr
            if cls in _CONNECTED:
                d["connect_timeout"] = ct
            elif cls is MiscCheck:
                d["misc_timeout"] = self.values.get("delay_loop", 60.0)
        self.defaults[key] = d
        return d

    def _checkers(
        self,
        checks: tuple[Pending, ...],
        timing: tuple[Any, ...],
        address: IPAddress,
        port: int,
        vhost: str | None,
    ) -> tuple[Any, ...]:
        """Effective checkers of one real server (inheritance: checker → RS → VS → default)."""
        objects = self.objects
        add = self.ctx.srcmap.add
        out: list[Any] = []
        n_dynamic = 0
        for c in checks:
            stmt, fields = objects.pop(id(c))
            cls = c.cls
            cv = c.copy()
            c.clear()
            if cls is TcpCheck and "delay_loop" not in cv:  # the common case
                tcp = self.tcp_defaults if timing is self.vs_timing else None
                if tcp is None:
                    tcp = self._defaults(TcpCheck, timing)
                    if timing is self.vs_timing:
                        self.tcp_defaults = tcp
                obj: Any = TcpCheck(**{**tcp, "connect_ip": address, "connect_port": port, **cv})
                if obj.connect_ip.version == 6 and not self._link_local_ok(obj, stmt):
                    continue
                add(obj, stmt, fields)
                out.append(obj)
                continue
            if cls is FileCheck:
                obj = FileCheck(**cv)
                add(obj, stmt, fields)
                out.append(obj)
                continue
            d = self._defaults(cls, timing)
            if cls in _CONNECTED:
                values = {**d, "connect_ip": address, "connect_port": port, **cv}
            else:
                values = {**d, **cv}
            if "delay_loop" in cv and cls is not BfdCheck:
                # Defaults that follow the checker's own delay_loop.
                if timing[2] is None and "warmup" not in cv:
                    values["warmup"] = cv["delay_loop"]
                if cls is DnsCheck and timing[1] is None and "delay_before_retry" not in cv:
                    values["delay_before_retry"] = cv["delay_loop"]
            if cls is SmtpCheck:
                out.extend(self._smtp_targets(stmt, fields, values))
                continue
            if cls is HttpGetCheck or cls is SslGetCheck:
                if vhost is not None:
                    values.setdefault("virtualhost", vhost)
            elif cls is MiscCheck:
                if not values["misc_timeout"]:
                    values["misc_timeout"] = d["misc_timeout"]
                if values.get("misc_dynamic"):
                    n_dynamic += 1
                    if n_dynamic == 2:
                        self.ctx.warning(
                            stmt,
                            "more than one misc_dynamic MISC_CHECK on"
                            " one real server: their weights conflict",
                        )
            obj = cls(**values)
            if cls in _CONNECTED and not self._link_local_ok(obj, stmt):
                continue
            add(obj, stmt, fields)
            out.append(obj)
        return tuple(out)

    def _forget(self, rv: dict[str, Any]) -> None:
        for c in rv.get("checkers", ()):
            self.objects.pop(id(c), None)

    def _link_local_ok(self, checker: Any, stmt: Stmt) -> bool:
        ip = checker.connect_ip
        if ip.version == 6 and ip.is_link_local and checker.bind_if is None:
            self.ctx.error(
                stmt,
                f"the checker's address {ip} is link-local and needs a"
                " bind_if; the checker is ignored",
                hint="add 'bind_if IFNAME'",
            )
            return False
        return True

    def _smtp_targets(
        self, stmt: Stmt, src: dict[str, Stmt], cv: dict[str, Any]
    ) -> list[SmtpCheck]:
        """The checker itself and one SmtpCheck per deprecated ``host { … }`` block.

        The checker's own target is checked only when it sets a connection keyword (other than
        connect_timeout) or has no host block, as the keepalived sample intends; each host
        starts from the checker's settings.
        """
        hosts: tuple[dict[str, Any], ...] = cv.pop("hosts", ())
        out: list[SmtpCheck] = []
        own_target = any(k in src for k in _HOST_CONN)
        if own_target or not hosts:
            obj = SmtpCheck(**cv)
            if self._link_local_ok(obj, stmt):
                self.ctx.srcmap.add(obj, stmt, src)
                out.append(obj)
        for host in hosts:
            hstmt, hsrc = self.objects.pop(id(host))
            obj = SmtpCheck(**{**cv, **host})
            if self._link_local_ok(obj, hstmt):
                self.ctx.srcmap.add(obj, hstmt, {**src, **hsrc})
                out.append(obj)
        return out

    # -- sorry server vs real servers, quorum -----------------------------------------------------

    def _sorry_matches_rs(self, sorry: SorryServer, servers: list[RealServer]) -> SorryServer:
        for rs in servers:
            if rs.address == sorry.address and rs.port == sorry.port:
                if rs.inhibit_on_failure != sorry.inhibit:
                    stmt = self.src["sorry_server"]
                    self.ctx.error(
                        stmt,
                        f"the sorry server is also real server {rs.address}"
                        f" port {rs.port} but their inhibit settings differ;"
                        " the real server's setting"
                        f" ({'on' if rs.inhibit_on_failure else 'off'}) is used",
                        arg=0,
                        hint="give both the same inhibit_on_failure / sorry_server_inhibit setting",
                    )
                    sorry = replace(sorry, inhibit=rs.inhibit_on_failure)
                break
        return sorry

    def _quorum(self, servers: list[RealServer]) -> None:
        v, src = self.values, self.src
        total = sum(rs.weight for rs in servers)
        quorum = v.get("quorum", 1)
        if quorum > total:
            self.ctx.warning(
                src.get("quorum") or self.stmt,
                f"quorum {quorum} exceeds the total weight of the real servers"
                f" ({total}); reduced to {total}",
                hint="lower the quorum or raise the weights",
            )
            quorum = v["quorum"] = total
        hysteresis = v.get("hysteresis", 0)
        if hysteresis and hysteresis >= quorum:
            new = max(quorum - 1, 0)
            self.ctx.warning(
                src.get("hysteresis") or self.stmt,
                f"hysteresis {hysteresis} must be below quorum {quorum}; set to {new}",
            )
            v["hysteresis"] = new
