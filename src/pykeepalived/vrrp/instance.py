"""What the VRRP machine needs from one ``vrrp_instance``, with every global default applied.

:meth:`InstanceParams.from_config` is the only place that reads the configuration model; the
machine sees plain, already-decided values (strict mode folded in, intervals rounded per
version and kept in exact microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.model.vrrp import PRIO_OWNER, Route, Rule, VipAddress, VrrpInstance
from pykeepalived.vrrp.timers import Version, advert_int_us, seconds

__all__ = ["GarpParams", "InstanceParams"]


@dataclass(frozen=True, slots=True)
class GarpParams:
    """Gratuitous ARP / NA settings of one instance (seconds and counts)."""

    master_delay: float = 5.0
    """Delay of the second burst after becoming MASTER (0: none)."""
    master_repeat: int = 5
    """GARPs per address per burst after becoming MASTER."""
    refresh: float = 0.0
    """Period of refresh bursts while MASTER (0: none)."""
    refresh_repeat: int = 1
    """GARPs per address per refresh burst."""
    lower_prio_delay: float = 5.0
    """Delay of the second burst after hearing a lower priority (0: none)."""
    lower_prio_repeat: int = 5
    """GARPs per address after hearing a lower priority (0: none)."""


@dataclass(frozen=True, slots=True)
class InstanceParams:
    """Decided parameters of one VRRP instance. Build with :meth:`from_config` or directly
    (tests): every field has the keepalived default."""

    name: str = "VI_1"
    vrid: int = 1
    priority: int = 100
    """Base priority 1..255 (255: address owner)."""
    initial_state: Literal["MASTER", "BACKUP"] = "BACKUP"
    version: Version = 2
    advert_int_us: int = 1_000_000
    """Our advertisement interval in µs, already rounded for ``version``."""
    nopreempt: bool = False
    preempt_delay: float = 0.0
    accept: bool = True
    strict: bool = False
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    owner_ignore_adverts: bool = False
    skip_check_adv_addr: bool = False
    vips: tuple[VipAddress, ...] = ()
    excluded: tuple[VipAddress, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()
    garp: GarpParams = field(default_factory=GarpParams)
    sync_group: str | None = None
    """Name of the sync group (None: none): a member only becomes MASTER with its group."""

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= PRIO_OWNER:
            raise ValueError(f"priority {self.priority} out of range 1..255")
        if self.advert_int_us <= 0:
            raise ValueError("advert_int_us must be positive")

    @property
    def is_owner(self) -> bool:
        """Priority 255: the address owner."""
        return self.priority == PRIO_OWNER

    @property
    def advert_int(self) -> float:
        """Our advertisement interval in seconds."""
        return seconds(self.advert_int_us)

    @classmethod
    def from_config(
        cls,
        inst: VrrpInstance,
        defs: GlobalDefs | None = None,
        *,
        sync_group: str | None = None,
    ) -> InstanceParams:
        """Fold the instance's settings and the globals into decided values."""
        g = defs if defs is not None else GlobalDefs()
        version: Version = 3 if inst.family == 6 else inst.effective_version(g.vrrp_version)
        strict = inst.effective_strict(g.vrrp_strict)
        owner = inst.priority == PRIO_OWNER
        initial = inst.state
        nopreempt = inst.nopreempt and not owner and initial != "MASTER"
        preempt_delay = inst.preempt_delay
        if initial == "MASTER" or strict or nopreempt:
            preempt_delay = 0.0

        def pick(value: bool | None, default: bool) -> bool:
            return default if value is None else value

        lower_prio_no_advert = pick(inst.lower_prio_no_advert, g.vrrp_lower_prio_no_advert)
        higher_prio_send_advert = pick(inst.higher_prio_send_advert, g.vrrp_higher_prio_send_advert)
        owner_ignore = pick(inst.owner_ignore_adverts, g.vrrp_owner_ignore_adverts)
        down_adverts = (
            inst.down_timer_adverts
            if inst.down_timer_adverts is not None
            else g.vrrp_down_timer_adverts
        )

        master_delay = pick_int(inst.garp_master_delay, g.vrrp_garp_master_delay)
        master_repeat = pick_int(inst.garp_master_repeat, g.vrrp_garp_master_repeat)
        lower_delay = pick_int(
            inst.garp_lower_prio_delay,
            g.vrrp_garp_lower_prio_delay
            if g.vrrp_garp_lower_prio_delay is not None
            else master_delay,
        )
        lower_repeat = pick_int(
            inst.garp_lower_prio_repeat,
            g.vrrp_garp_lower_prio_repeat
            if g.vrrp_garp_lower_prio_repeat is not None
            else master_repeat,
        )
        refresh = pick_int(inst.garp_master_refresh, g.vrrp_garp_master_refresh)
        refresh_repeat = pick_int(
            inst.garp_master_refresh_repeat, g.vrrp_garp_master_refresh_repeat
        )
        if g.vrrp_min_garp:
            master_repeat, master_delay = 1, 0
            lower_repeat, lower_delay = 1, 0
        if strict:
            lower_prio_no_advert, higher_prio_send_advert = True, False
            owner_ignore = True
            lower_repeat, lower_delay = 0, 0
            down_adverts = 3

        return cls(
            name=inst.name,
            vrid=inst.virtual_router_id,
            priority=inst.priority,
            initial_state=initial,
            version=version,
            advert_int_us=advert_int_us(inst.advert_int, version),
            nopreempt=nopreempt,
            preempt_delay=preempt_delay,
            accept=inst.effective_accept(strict, version),
            strict=strict,
            down_timer_adverts=down_adverts,
            lower_prio_no_advert=lower_prio_no_advert,
            higher_prio_send_advert=higher_prio_send_advert,
            owner_ignore_adverts=owner_ignore,
            skip_check_adv_addr=pick(inst.skip_check_adv_addr, g.vrrp_skip_check_adv_addr),
            vips=inst.virtual_ipaddress,
            excluded=inst.virtual_ipaddress_excluded,
            routes=inst.virtual_routes,
            rules=inst.virtual_rules,
            garp=GarpParams(
                master_delay=float(master_delay),
                master_repeat=master_repeat,
                refresh=float(refresh),
                refresh_repeat=refresh_repeat,
                lower_prio_delay=float(lower_delay),
                lower_prio_repeat=lower_repeat,
            ),
            sync_group=sync_group,
        )

    def with_advert_int(self, value: float) -> InstanceParams:
        """A copy with ``advert_int`` set from seconds, rounded as ``version`` requires."""
        return replace(self, advert_int_us=advert_int_us(value, self.version))


def pick_int(value: int | None, default: int) -> int:
    """``value`` unless it is None."""
    return default if value is None else value
