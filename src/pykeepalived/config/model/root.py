"""The whole configuration: root keywords, global_defs, the VRRP side and the LVS side."""

from __future__ import annotations

from dataclasses import dataclass, field

from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.config.model.vrrp import VrrpConfig

__all__ = ["Config", "RootOptions"]


@dataclass(frozen=True, slots=True)
class RootOptions:
    """Keywords outside any block (reference §3.1); they cannot change on reload."""

    net_namespace: str | None = None
    """Run in this network namespace."""
    net_namespace_ipvs: str | None = None
    """Network namespace for IPVS (None: the same as ``net_namespace``)."""
    namespace_with_ipsets: bool = False
    instance: str | None = None
    """Instance name: changes pid file and data file names."""
    use_pid_dir: bool = False
    """Put pid files in /run/keepalived/."""
    linkbeat_use_polling: bool = False
    """Poll link state (MII/ethtool) instead of using netlink."""
    child_wait_time: float = 5.0
    """Seconds the parent waits for children to exit before SIGKILL."""


@dataclass(frozen=True, slots=True)
class Config:
    """A complete, validated keepalived.conf."""

    root: RootOptions = field(default_factory=RootOptions)
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrp: VrrpConfig = field(default_factory=VrrpConfig)
    lvs: LvsConfig = field(default_factory=LvsConfig)

    @property
    def has_vrrp(self) -> bool:
        """True when the VRRP subsystem has something to do."""
        return any(
            bool(getattr(self.vrrp, f, ()))
            for f in ("vrrp_instances", "static_ipaddress", "static_routes", "static_rules")
        )

    @property
    def has_checker(self) -> bool:
        """True when the checker / load-balancer subsystem has something to do."""
        return bool(getattr(self.lvs, "virtual_servers", ()))
