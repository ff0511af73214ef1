"""The VRRP state machine of one instance (RFC 3768/5798 as keepalived implements them).

Sans-IO and table-driven (STYLE sketches 1 and 2): inputs go in through :meth:`handle`, time
through :meth:`handle_timer`, outputs come out of :meth:`drain`, and :meth:`next_deadline`
tells the driver when to call back. ``now`` is always an argument (monotonic seconds).

Every ``(state, input type)`` pair is decided in :attr:`VrrpMachine._table`; a pair that is
not there is the decision "ignore and count": it emits :class:`~.actions.Ignored` and never
raises, because adverts come from untrusted peers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pykeepalived.config.model.vrrp import PRIO_OWNER
from pykeepalived.vrrp.actions import (
    Action,
    AddressMismatch,
    AdvertDiscarded,
    Announce,
    ConfigConflict,
    Ignored,
    MasterRxLowerPri,
    PriorityNotice,
    SendAdvert,
    StateChanged,
    WantAddresses,
)
from pykeepalived.vrrp.events import (
    AddressLost,
    AdvertReceived,
    Input,
    LinkChanged,
    PriorityChanged,
    Reannounce,
    Shutdown,
    Startup,
    State,
    SyncGroupForce,
    TrackerFault,
)
from pykeepalived.vrrp.timers import (
    CENTI_US,
    master_down_us,
    seconds,
    skew_min_us,
    skew_us,
    to_us,
)

if TYPE_CHECKING:
    from pykeepalived.config.model.common import IPAddress
    from pykeepalived.vrrp.instance import InstanceParams

__all__ = ["VrrpMachine", "compare_addresses"]

_Handler = Callable[[Any, float], None]
_DOWN_EXPIRED = "master_down timer expired"


def compare_addresses(a: IPAddress, b: IPAddress) -> int:
    """-1, 0 or 1 as ``a`` is numerically lower, equal or higher than ``b`` (host order;
    IPv6 compares as one 128-bit number, which is word-by-word order)."""
    ka, kb = (a.version, int(a)), (b.version, int(b))
    return (ka > kb) - (ka < kb)


class VrrpMachine:
    """One VRRP instance. Pure: no I/O, no clock, no logging."""

    def __init__(self, params: InstanceParams, *, local: IPAddress) -> None:
        self.params = params
        self.local = local
        """Our primary address: the advert source and the equal-priority tie-breaker."""
        self.state = State.INIT
        self.wants_master = False
        """The down timer expired but the sync group held us in BACKUP (keepalived's
        ``wantstate``); cleared when an advert is accepted."""
        self.master_address: IPAddress | None = None
        """Source of the last accepted advert (ours while MASTER)."""
        self.master_priority: int | None = None
        self._base = params.priority
        self._priority = params.priority
        self._master_adv_us = params.advert_int_us
        self._down_at: float | None = None
        self._down_reason = _DOWN_EXPIRED
        self._adver_at: float | None = None
        self._refresh_at: float | None = None
        self._preempt_at: float | None = None
        self._link_up = True
        self._tracker_fault = False
        self._tracker_reason = ""
        self._group_fault = False
        self._rogue_since: float | None = None
        self._rogue_last = 0.0
        self._out: list[Action] = []
        init, backup, master, fault = State.INIT, State.BACKUP, State.MASTER, State.FAULT
        self._table: dict[tuple[State, type[Input]], _Handler] = {
            (init, Startup): self._start,
            (init, Shutdown): self._stop,
            (init, LinkChanged): self._link,
            (init, TrackerFault): self._tracker,
            (init, PriorityChanged): self._priority_changed,
            (backup, Shutdown): self._stop,
            (backup, AdvertReceived): self._backup_advert,
            (backup, LinkChanged): self._link,
            (backup, TrackerFault): self._tracker,
            (backup, PriorityChanged): self._priority_changed,
            (backup, SyncGroupForce): self._backup_forced,
            (master, Shutdown): self._stop,
            (master, AdvertReceived): self._master_advert,
            (master, LinkChanged): self._link,
            (master, TrackerFault): self._tracker,
            (master, PriorityChanged): self._priority_changed,
            (master, SyncGroupForce): self._master_forced,
            (master, Reannounce): self._reannounce,
            (master, AddressLost): self._address_lost,
            (fault, Shutdown): self._stop,
            (fault, LinkChanged): self._link,
            (fault, TrackerFault): self._tracker,
            (fault, PriorityChanged): self._priority_changed,
            (fault, SyncGroupForce): self._fault_forced,
            # Decided as Ignored (absent on purpose, see tests/unit/vrrp/test_machine.py):
            # Startup once started; adverts in INIT/FAULT/STOP; Reannounce unless MASTER;
            # SyncGroupForce in INIT; AddressLost unless MASTER; everything in STOP.
        }

    # ---- the public surface -------------------------------------------------------------

    def handle(self, event: Input, now: float) -> None:
        """Feed one input at time ``now``."""
        handler = self._table.get((self.state, type(event)))
        if handler is None:
            self._out.append(Ignored(event, self.state))
        else:
            handler(event, now)

    def handle_timer(self, now: float) -> None:
        """Run whatever is due at ``now`` (harmless when nothing is)."""
        if self.state is State.BACKUP and self._down_at is not None and now >= self._down_at:
            self._down_expired(now)
        if self.state is State.MASTER:
            if self._adver_at is not None and now >= self._adver_at:
                self._send_advert(now)
            if self._refresh_at is not None and now >= self._refresh_at:
                self._out.append(Announce(self.params.garp.refresh_repeat, 0.0, "refresh"))
                self._refresh_at = now + self.params.garp.refresh

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called (None: no timer)."""
        return min(
            (t for t in (self._down_at, self._adver_at, self._refresh_at) if t is not None),
            default=None,
        )

    def drain(self) -> list[Action]:
        """The actions emitted since the last call, in order."""
        out, self._out = self._out, []
        return out

    def reconfigure(self, params: InstanceParams, now: float, priority: int | None = None) -> None:
        """Take new parameters in place (a reload), keeping the state: a MASTER stays MASTER
        and a BACKUP stays BACKUP, with no election.

        ``priority`` is the new effective priority (the trackers' view of the new base; the
        base itself by default). A MASTER whose virtual addresses, routes or rules changed
        asks for the new set, and announces its addresses when it gained some. Timers keep
        running: the next advert goes out when it was due, or sooner with a shorter
        interval; a BACKUP's down timer moves with its new priority and interval."""
        if params.vrid != self.params.vrid:
            raise ValueError(f"{self.name}: VRID {self.params.vrid} cannot become {params.vrid}")
        old = self.params
        old_down = self._master_down_us()
        self.params = params
        self._base = params.priority
        effective = params.priority if priority is None else priority
        if self._is_owner:
            effective = PRIO_OWNER
        elif priority is not None:
            effective = min(max(effective, 1), PRIO_OWNER - 1)
        changed_priority = effective != self._priority
        previous_priority, self._priority = self._priority, effective
        interval = seconds(params.advert_int_us)
        if params.version == 2 or self.state is State.MASTER:
            self._master_adv_us = params.advert_int_us
        if self.state is State.MASTER:
            self.master_priority = effective
            if self._adver_at is not None:
                self._adver_at = min(self._adver_at, now + interval)
            if params.garp.refresh != old.garp.refresh:
                self._refresh_at = now + params.garp.refresh if params.garp.refresh > 0 else None
            records = (old.vips, old.excluded, old.routes, old.rules)
            if records != (params.vips, params.excluded, params.routes, params.rules):
                self._out.append(self._want())
                gained = set(params.vips) - set(old.vips) or set(params.excluded) - set(
                    old.excluded
                )
                if gained and params.garp.master_repeat > 0:
                    garp = params.garp
                    self._out.append(Announce(garp.master_repeat, garp.master_delay, "master"))
        elif self.state is State.BACKUP and self._down_at is not None:
            self._down_at = max(now, self._down_at + seconds(self._master_down_us() - old_down))
        if params.preempt_delay <= 0 or params.nopreempt:
            self._preempt_at = None
        if changed_priority:
            self._out.append(PriorityNotice(previous_priority, effective, self.state))

    # ---- read-only views ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.params.name

    @property
    def vrid(self) -> int:
        return self.params.vrid

    @property
    def priority(self) -> int:
        """Effective priority (255 for the owner)."""
        return self._priority

    @property
    def own_fault(self) -> bool:
        """Our own interface or an unweighted tracker is down (not the group's doing)."""
        return not self._link_up or self._tracker_fault

    @property
    def master_adver_int(self) -> float:
        """Master_Adver_Interval in seconds (VRRPv3 learns it from the master)."""
        return seconds(self._master_adv_us)

    @property
    def down_deadline(self) -> float | None:
        """When the master will be declared down (BACKUP only)."""
        return self._down_at

    # ---- arithmetic -----------------------------------------------------------------------

    def _skew_us(self) -> int:
        return skew_us(self._priority, self._master_adv_us, self.params.version)

    def _master_down_us(self, priority: int | None = None) -> int:
        return master_down_us(
            self._priority if priority is None else priority,
            self._master_adv_us,
            self.params.version,
            self.params.down_timer_adverts,
        )

    @property
    def _is_owner(self) -> bool:
        return self._base == PRIO_OWNER

    @property
    def _gated(self) -> bool:
        return self.params.sync_group is not None

    def _want(self) -> WantAddresses:
        p = self.params
        return WantAddresses(p.vips, p.excluded, p.routes, p.rules, p.accept)

    # ---- shared transitions ---------------------------------------------------------------

    def _changed(self, old: State, reason: str, forced: bool) -> None:
        self._out.append(StateChanged(old, self.state, reason, self._priority, forced))

    def _send_advert(self, now: float) -> None:
        self._out.append(SendAdvert(self._priority))
        self._adver_at = now + seconds(self.params.advert_int_us)

    def _become_master(self, now: float, reason: str, *, forced: bool = False) -> None:
        old = self.state
        self.state = State.MASTER
        self.wants_master = False
        self._down_at = None
        self._preempt_at = None
        self._rogue_since = None
        self._master_adv_us = self.params.advert_int_us
        self.master_address, self.master_priority = self.local, self._priority
        garp = self.params.garp
        self._send_advert(now)
        self._out.append(self._want())
        if garp.master_repeat > 0:
            self._out.append(Announce(garp.master_repeat, garp.master_delay, "master"))
        self._changed(old, reason, forced)
        self._refresh_at = now + garp.refresh if garp.refresh > 0 else None

    def _enter_backup(self, now: float, reason: str, down_us: int, *, forced: bool) -> None:
        old = self.state
        self.state = State.BACKUP
        self.wants_master = False
        self._preempt_at = None
        self._down_at = now + seconds(down_us)
        self._down_reason = _DOWN_EXPIRED
        self._changed(old, reason, forced)

    def _leave_master(
        self,
        now: float,
        new: State,
        reason: str,
        *,
        prio0: bool,
        forced: bool = False,
        down_us: int | None = None,
    ) -> None:
        if prio0:
            self._out.append(SendAdvert(0))
        self._out.append(WantAddresses())
        self._adver_at = self._refresh_at = None
        if new is State.BACKUP:
            down = self._master_down_us() if down_us is None else down_us
            self._enter_backup(now, reason, down, forced=forced)
        else:
            self.state = new
            self._changed(State.MASTER, reason, forced)

    def _enter_fault(self, now: float, reason: str, *, forced: bool = False) -> None:
        if self.state is State.MASTER:
            self._leave_master(now, State.FAULT, reason, prio0=True, forced=forced)
            return
        old = self.state
        self.state = State.FAULT
        self.wants_master = False
        self._down_at = None
        self._changed(old, reason, forced)

    def _leave_fault(self, now: float, reason: str, *, forced: bool = False) -> None:
        self._master_adv_us = self.params.advert_int_us
        owner_start = self._is_owner and self.params.initial_state == "MASTER"
        if owner_start and not self._gated:
            self._become_master(now, reason, forced=forced)
            return
        down = 1 if owner_start else self._master_down_us()
        self._enter_backup(now, reason, down, forced=forced)

    def _down_expired(self, now: float) -> None:
        if self._gated:
            # keepalived prefers BACKUP to thrashing: wait for the whole group to want MASTER.
            self.wants_master = True
            self._down_at = now + seconds(self._master_down_us())
            return
        self._become_master(now, self._down_reason)

    # ---- handlers: lifecycle --------------------------------------------------------------

    def _start(self, _: Startup, now: float) -> None:
        p = self.params
        self._master_adv_us = p.advert_int_us
        owner_start = self._is_owner and p.initial_state == "MASTER"
        if owner_start and not self.own_fault and not self._gated:
            self._become_master(now, "startup as address owner")
            return
        self._out.append(WantAddresses())  # forced clean-up of leftovers
        if self.own_fault:
            self._enter_fault(now, f"startup: {self._fault_reason()}")
        elif owner_start:
            self._enter_backup(now, "startup as address owner", 1, forced=False)
        elif p.initial_state == "MASTER":
            down = p.advert_int_us + skew_min_us(p.advert_int_us, p.version)
            self._enter_backup(now, "startup (state MASTER)", down, forced=False)
        else:
            self._enter_backup(now, "startup", self._master_down_us(), forced=False)
        if self.state is State.BACKUP and p.preempt_delay > 0:
            self._preempt_at = now + p.preempt_delay  # the delay also runs from start-up

    def _stop(self, ev: Shutdown, now: float) -> None:
        old = self.state
        if old is State.MASTER:
            self._out.append(SendAdvert(0))
            self._out.append(WantAddresses())
        self._down_at = self._adver_at = self._refresh_at = None
        self.wants_master = False
        self.state = State.STOP
        self._changed(old, "deleted by reload" if ev.deleted else "shutdown", False)

    # ---- handlers: faults and priority ----------------------------------------------------

    def _fault_reason(self) -> str:
        if not self._link_up:
            return "interface down"
        return self._tracker_reason or "tracker failed"

    def _link(self, ev: LinkChanged, now: float) -> None:
        self._link_up = ev.up
        self._reevaluate_fault(now, "interface up" if ev.up else "interface down")

    def _tracker(self, ev: TrackerFault, now: float) -> None:
        self._tracker_fault = ev.fault
        self._tracker_reason = ev.reason
        default = "tracker failed" if ev.fault else "trackers recovered"
        self._reevaluate_fault(now, ev.reason or default)

    def _reevaluate_fault(self, now: float, reason: str) -> None:
        if self.state in (State.BACKUP, State.MASTER) and self.own_fault:
            self._enter_fault(now, reason)
        elif (
            self.state is State.FAULT
            and not self.own_fault
            and not self._group_fault
            and not self._gated  # a member leaves FAULT with its group
        ):
            self._leave_fault(now, reason)

    def _priority_changed(self, ev: PriorityChanged, now: float) -> None:
        if self._is_owner:  # the owner's priority never changes (reference §4.2)
            self._out.append(Ignored(ev, self.state))
            return
        new = min(max(ev.priority, 1), PRIO_OWNER - 1)
        old = self._priority
        if new == old:
            return
        old_down = self._master_down_us()
        self._priority = new
        if self.state is State.BACKUP and self._down_at is not None:
            self._down_at += seconds(self._master_down_us() - old_down)
        self._out.append(PriorityNotice(old, new, self.state))

    # ---- handlers: adverts ----------------------------------------------------------------

    def _usable(self, ev: AdvertReceived) -> bool:
        """Checks the packet layer cannot make: returns False (and says why) to drop."""
        p = self.params
        reason = ""
        if not 0 <= ev.priority <= PRIO_OWNER:
            reason = f"invalid priority {ev.priority}"
        elif not math.isfinite(ev.adver_int) or not 0 < ev.adver_int < 4096:
            reason = f"invalid advertisement interval {ev.adver_int}"
        elif p.version == 2 and to_us(ev.adver_int) != p.advert_int_us:
            reason = (
                f"advertisement interval mismatch with {ev.source}: "
                f"{ev.adver_int:g} s, ours {p.advert_int:g} s"
            )
        elif self._is_owner and p.owner_ignore_adverts:
            reason = "address owner ignores adverts (owner_ignore_adverts)"
        if reason:
            self._out.append(AdvertDiscarded(ev, reason))
            return False
        self._check_addresses(ev)
        return True

    def _check_addresses(self, ev: AdvertReceived) -> None:
        if ev.addresses is None:
            return
        if self.params.skip_check_adv_addr and ev.source == self.master_address:
            return
        ours = frozenset(v.address.ip for v in self.params.vips)
        if ev.addresses != ours:
            self._out.append(AddressMismatch(ev.source, ours - ev.addresses, ev.addresses - ours))

    def _adopt_interval(self, ev: AdvertReceived) -> None:
        if self.params.version == 3:
            centi = min(max(math.floor(ev.adver_int * 100 + 0.5), 1), 4095)
            self._master_adv_us = centi * CENTI_US

    def _backup_advert(self, ev: AdvertReceived, now: float) -> None:
        if not self._usable(ev):
            return
        p = self.params
        if ev.priority == 0:
            self._down_at = now + seconds(self._skew_us())
            self._down_reason = f"{_DOWN_EXPIRED} after priority 0 advert from {ev.source}"
            return
        preempt_running = p.preempt_delay > 0 and (
            self._preempt_at is None or self._preempt_at > now
        )
        if p.nopreempt or ev.priority >= self._priority or preempt_running:
            self._adopt_interval(ev)
            self._down_at = now + seconds(self._master_down_us())
            self._down_reason = _DOWN_EXPIRED
            self.master_address, self.master_priority = ev.source, ev.priority
            if p.preempt_delay > 0:
                if ev.priority >= self._priority:
                    self._preempt_at = None
                elif self._preempt_at is None:
                    self._preempt_at = now + p.preempt_delay
            self.wants_master = False
        else:
            self.master_address = ev.source
            self._out.append(
                AdvertDiscarded(
                    ev,
                    f"received lower priority ({ev.priority}) advert from {ev.source} - discarding",
                )
            )

    def _master_advert(self, ev: AdvertReceived, now: float) -> None:
        if not self._usable(ev):
            return
        p = self.params
        if ev.priority == 0:
            self._send_advert(now)
            return
        cmp = compare_addresses(ev.source, self.local)
        if ev.priority == self._priority and cmp == 0:
            self._out.append(
                ConfigConflict(
                    ev.source, "equal priority advert received from remote host with our IP"
                )
            )
            return
        if ev.priority == self._priority == PRIO_OWNER:
            self._rogue_owner(ev, now, cmp)
        ours = self._priority
        if ev.priority < ours or (ev.priority == ours and cmp < 0):
            if not p.lower_prio_no_advert:
                self._send_advert(now)
            if p.garp.lower_prio_repeat > 0:
                self._out.append(
                    Announce(p.garp.lower_prio_repeat, p.garp.lower_prio_delay, "lower_prio")
                )
            self._out.append(MasterRxLowerPri(ev.source, ev.priority))
            return
        if p.higher_prio_send_advert:
            self._out.append(SendAdvert(ours))
        self._adopt_interval(ev)
        self.master_address, self.master_priority = ev.source, ev.priority
        if ev.priority > ours:
            reason = f"higher priority advert from {ev.source} ({ev.priority} > {ours})"
        else:
            reason = f"equal priority advert from {ev.source} ({ours}) with a higher address"
        self._leave_master(now, State.BACKUP, reason, prio0=False)

    def _rogue_owner(self, ev: AdvertReceived, now: float, cmp: int) -> None:
        """Two address owners. The lower address backs off (the caller's tie-break); the
        higher one tolerates the other for two of its adverts plus 1.2 times the longer interval,
        then reduces itself to 254 and so yields too."""
        if cmp > 0:
            self._out.append(
                ConfigConflict(
                    ev.source,
                    "local instance and a remote instance are both configured as address"
                    " owner, please resolve",
                )
            )
            return
        adv = seconds(self.params.advert_int_us)
        limit = 2 * adv + 1.2 * max(adv, ev.adver_int)
        if self._rogue_since is None or now - self._rogue_last > limit:
            self._rogue_since = now
        self._rogue_last = now
        if now - self._rogue_since >= limit:
            self._out.append(
                ConfigConflict(
                    ev.source,
                    f"{ev.source} is still advertising as address owner, please resolve"
                    " - reducing local priority to 254",
                )
            )
            self._base = self._priority = PRIO_OWNER - 1

    # ---- handlers: sync group ---------------------------------------------------------------

    def _backup_forced(self, ev: SyncGroupForce, now: float) -> None:
        reason = f"sync group {ev.group} forced {ev.state.value}"
        if ev.state is State.MASTER:
            self._become_master(now, reason, forced=True)
        elif ev.state is State.FAULT:
            self._group_fault = True
            self._enter_fault(now, reason, forced=True)
        elif ev.state is not State.BACKUP:
            self._out.append(Ignored(ev, self.state))

    def _master_forced(self, ev: SyncGroupForce, now: float) -> None:
        reason = f"sync group {ev.group} forced {ev.state.value}"
        if ev.state is State.BACKUP:
            self._leave_master(now, State.BACKUP, reason, prio0=False, forced=True)
        elif ev.state is State.FAULT:
            self._group_fault = True
            self._enter_fault(now, reason, forced=True)
        elif ev.state is not State.MASTER:
            self._out.append(Ignored(ev, self.state))

    def _fault_forced(self, ev: SyncGroupForce, now: float) -> None:
        if ev.state is State.FAULT:
            self._group_fault = True
        elif ev.state is State.BACKUP:
            self._group_fault = False
            if not self.own_fault:
                self._leave_fault(now, f"sync group {ev.group} left FAULT", forced=True)
        else:
            self._out.append(Ignored(ev, self.state))

    def _address_lost(self, ev: AddressLost, now: float) -> None:
        # keepalived: priority 0, release, and a down timer of only the skew time
        reason = f"{ev.what} was deleted"
        self._leave_master(now, State.BACKUP, reason, prio0=True, down_us=self._skew_us())

    def _reannounce(self, _: Reannounce, now: float) -> None:
        garp = self.params.garp
        if garp.lower_prio_repeat > 0:
            self._out.append(Announce(garp.lower_prio_repeat, garp.lower_prio_delay, "lower_prio"))
