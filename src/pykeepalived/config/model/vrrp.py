"""VRRP-side model: static addresses/routes/rules, trackers, sync groups and VRRP instances.

Every object is built from keepalived.conf by :mod:`pykeepalived.config.keywords.vrrp` and
checked across objects by :mod:`pykeepalived.config.validate.vrrp`. Values are typed and
defaults are filled in where keepalived derives them from the block itself (``priority`` from
``state``, ``timeout`` from ``interval``, …). A value that falls back to a ``global_defs``
setting when the block does not set it is ``None`` here; the field's docstring names the
setting, and the ``effective_*`` helpers of :class:`VrrpInstance` apply the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import ClassVar, Literal

from pykeepalived.config.model.common import IPAddress, IPNetwork, Script, TrackRef
from pykeepalived.config.model.globals import GarpExtraIf

__all__ = [
    "AUTH_PASS_LEN",
    "PRIO_OWNER",
    "AddressFamily",
    "AuthHmac",
    "AuthHmacKey",
    "AuthType",
    "Authentication",
    "BfdInstance",
    "GarpGroup",
    "InitFile",
    "InitialState",
    "InterfaceUpDownDelay",
    "IpPrefix",
    "Ipvlan",
    "LinkbeatInterface",
    "Nexthop",
    "Route",
    "RouteType",
    "Rule",
    "RuleAction",
    "SyncGroup",
    "TrackFile",
    "TrackGroup",
    "TrackProcess",
    "UnicastPeer",
    "UseVmac",
    "VipAddress",
    "VrrpConfig",
    "VrrpInstance",
    "VrrpScript",
]

PRIO_OWNER = 255
"""The priority of the address owner."""
AUTH_PASS_LEN = 8
"""VRRPv2 simple-password authentication carries 8 bytes."""

AddressFamily = Literal[4, 6]
InitialState = Literal["MASTER", "BACKUP"]
AuthType = Literal["PASS", "AH"]
RouteType = Literal[
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "throw",
    "unreachable",
    "prohibit",
    "blackhole",
    "nat",
    "anycast",
]
RuleAction = Literal["table", "goto", "nop", "blackhole", "unreachable", "prohibit"]
IpPrefix = IPv4Network | IPv6Network
"""A route or rule destination/source: network address plus prefix length."""


# ---- addresses, routes, rules --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VipAddress:
    """One line of ``virtual_ipaddress``/``virtual_ipaddress_excluded``/``static_ipaddress``.

    ``ADDR[/LEN] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP[/LEN]] [home] [-nodad]
    [mngtmpaddr] [noprefixroute] [autojoin] [no_track] [preferred_lft N|forever] [use_vmac]
    [track_group G]``.
    """

    address: IPNetwork
    """The address and its prefix (/32 or /128 when none is written; with ``peer`` the
    prefix is the peer's)."""
    brd: IPv4Address | None = None
    """Broadcast address (``+``/``-`` are resolved here: host bits set / cleared)."""
    dev: str | None = None
    """Interface (None: the instance's interface, or ``default_interface`` for static ones)."""
    scope: int | None = None
    """Address scope number (global 0, site 200, link 253, host 254, nowhere 255); IPv4 only."""
    label: str | None = None
    """Address label (IPv4 only), e.g. ``eth0:1``."""
    peer: IPAddress | None = None
    """The other end of a point-to-point address."""
    home: bool = False
    """IFA_F_HOMEADDRESS (IPv6 mobility)."""
    nodad: bool = False
    """``-nodad``: skip duplicate address detection (IPv6)."""
    mngtmpaddr: bool = False
    """IFA_F_MANAGETEMPADDR (IPv6 privacy addresses)."""
    noprefixroute: bool = False
    """Do not create the prefix route."""
    autojoin: bool = False
    """Join the multicast group of a multicast address."""
    no_track: bool = False
    """Do not leave MASTER (or restore the static address) when it is deleted externally."""
    preferred_lft: int | None = None
    """Preferred lifetime in seconds (0xFFFFFFFF: ``forever``; None: keepalived's default,
    0 for an IPv6 /128 and forever otherwise)."""
    use_vmac: bool = False
    """Put this address on a VMAC interface of its own (VIPs only)."""
    track_group: str | None = None
    """``track_group`` to put in FAULT when this static address cannot be restored."""

    @property
    def family(self) -> AddressFamily:
        """4 or 6."""
        return 4 if self.address.version == 4 else 6


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One ``nexthop`` of a multipath route (or one side of the old ``via X or Y``)."""

    via: IPAddress | None = None
    """Gateway."""
    dev: str | None = None
    """Output interface."""
    weight: int | None = None
    """Relative weight 1..256 (None: 1)."""
    onlink: bool = False
    """Pretend the gateway is directly attached."""
    options: tuple[tuple[str, str], ...] = ()
    """Other words (``encap …``, ``realms …``) as (word, value) pairs."""


@dataclass(frozen=True, slots=True)
class Route:
    """One line of ``static_routes``/``virtual_routes`` in ``ip route add`` syntax."""

    to: IpPrefix
    """Destination prefix (``default`` is 0.0.0.0/0 or ::/0)."""
    family: AddressFamily = 4
    """4 or 6 (from the addresses, or ``inet``/``inet6``)."""
    type: RouteType = "unicast"
    """Route type (``blackhole 10.0.0.0/8`` sets it)."""
    via: IPAddress | None = None
    """Gateway (``via`` or the deprecated ``gw``)."""
    src: IPAddress | None = None
    """Preferred source address."""
    dev: str | None = None
    """Output interface (``dev`` or ``oif``)."""
    table: int = 254
    """Routing table number (names are resolved through rt_tables; 254 is main)."""
    metric: int | None = None
    """Route metric (``metric``/``priority``/``preference``)."""
    scope: int | None = None
    """Route scope number (None: the kernel's default for the route type)."""
    protocol: int | None = None
    """Routing protocol number (names resolved through rt_protos). Tracked routes are always
    installed with protocol keepalived (18)."""
    onlink: bool = False
    """Pretend the gateway is directly attached."""
    nexthops: tuple[Nexthop, ...] = ()
    """Multipath next hops (``nexthop …`` or the deprecated ``via X or Y``)."""
    no_track: bool = False
    """Do not leave MASTER when the route is deleted externally (also set, with a warning,
    for a route without ``dev``: such a route cannot be tracked)."""
    track_group: str | None = None
    """``track_group`` to put in FAULT when this static route cannot be restored."""
    options: tuple[tuple[str, str], ...] = ()
    """Every other ``ip route`` option as (word, value) pairs, value '' for flags (``mtu`` →
    ``("mtu", "lock 1400")``, ``encap`` → ``("encap", "mpls 200")``, …)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of ``static_rules``/``virtual_rules`` in ``ip rule add`` syntax."""

    action: RuleAction
    """What a match does: look up a table, go to another rule, nothing, or reject."""
    family: AddressFamily = 4
    """4 or 6 (from the addresses, or ``inet``/``inet6``; IPv4 by default)."""
    from_addr: IpPrefix | None = None
    """``from PREFIX`` (None: all)."""
    to_addr: IpPrefix | None = None
    """``to PREFIX`` (None: all)."""
    iif: str | None = None
    """Input interface (``iif`` or ``dev``)."""
    oif: str | None = None
    """Output interface."""
    fwmark: int | None = None
    """Firewall mark to match (``fwmark N[/MASK]``)."""
    fwmask: int | None = None
    """Mask for ``fwmark N/MASK`` (None: all bits)."""
    table: int | None = None
    """Table looked up (``table``/``lookup``; action ``table``)."""
    goto: int | None = None
    """Target preference (action ``goto``)."""
    preference: int | None = None
    """Rule priority (``preference``/``priority``/``order``). None: keepalived assigns one,
    counting down from 16384 per address family in file order."""
    invert: bool = False
    """``not``: the selector is inverted."""
    no_track: bool = False
    """Do not leave MASTER when the rule is deleted externally."""
    track_group: str | None = None
    """``track_group`` to put in FAULT when this static rule cannot be restored."""
    options: tuple[tuple[str, str], ...] = ()
    """Every other ``ip rule`` option as (word, value) pairs (``tos``, ``realms``,
    ``suppress_prefixlength``, ``uidrange``, ``sport``, ``dport``, ``ipproto``, …)."""


@dataclass(frozen=True, slots=True)
class LinkbeatInterface:
    """One line of ``linkbeat_interfaces``: poll this interface for link state."""

    interface: str
    """Interface name."""
    method: Literal["MII", "ETHTOOL", "IOCTL"] | None = None
    """Polling method (None: try MII, then ETHTOOL, then IOCTL)."""


@dataclass(frozen=True, slots=True)
class InterfaceUpDownDelay:
    """One line of ``interface_up_down_delays``: ``IF DOWN_DELAY [UP_DELAY]``."""

    interface: str
    """Interface name."""
    down_delay: float
    """Seconds a link must stay down before instances react (0..255)."""
    up_delay: float
    """Seconds a link must stay up before instances react (defaults to ``down_delay``)."""


@dataclass(frozen=True, slots=True)
class TrackGroup:
    """``track_group NAME { group { VI_1 … } }``: instances to put in FAULT when a static
    address/route/rule that names this group cannot be restored."""

    kind: ClassVar[str] = "track_group"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The group's name, used by ``track_group NAME`` of static items."""
    members: tuple[str, ...] = ()
    """vrrp_instance names (``group { … }``)."""


# ---- trackers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitFile:
    """``init_file [VALUE] [overwrite]`` of a track_file."""

    value: int = 0
    """Value written to a newly created file."""
    overwrite: bool = False
    """Write it even when the file exists."""


@dataclass(frozen=True, slots=True)
class TrackFile:
    """``track_file NAME { … }`` (alias ``vrrp_track_file``): an integer read from a file."""

    kind: ClassVar[str] = "track_file"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The name ``track_file { NAME }`` refers to."""
    file: str
    """Path of the file (re-read whenever it changes)."""
    weight: int = 1
    """Multiplier of the file's value (weight 0: non-zero value means FAULT)."""
    weight_reverse: bool = False
    """``weight N reverse``: the contribution is negated."""
    init_file: InitFile | None = None
    """Create the file at start-up."""


@dataclass(frozen=True, slots=True)
class TrackProcess:
    """``vrrp_track_process NAME { … }``: a process that must be running."""

    kind: ClassVar[str] = "vrrp_track_process"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The name ``track_process { NAME }`` refers to."""
    process: str
    """Process name (``/proc/PID/comm``) or path (with ``full_command``)."""
    params: tuple[str, ...] = ()
    """Parameters that must match (giving any implies ``full_command``)."""
    param_match: Literal["exact", "initial", "partial"] = "exact"
    """How ``params`` are compared with the process's."""
    full_command: bool = False
    """Match the full command line instead of the process name."""
    weight: int = 0
    """-254..254; 0: the instance goes to FAULT when the process is not running."""
    weight_reverse: bool = False
    """``weight N reverse``: the contribution is negated."""
    quorum: int = 1
    """Minimum number of matching processes (1..65535)."""
    quorum_max: int | None = None
    """Maximum number of matching processes (None: no limit)."""
    fork_delay: float | None = None
    """Seconds to wait after a fork before counting the process."""
    terminate_delay: float | None = None
    """Seconds to wait after an exit before counting the process gone."""


@dataclass(frozen=True, slots=True)
class VrrpScript:
    """``vrrp_script NAME { … }``: a command run periodically; exit status 0 means OK."""

    kind: ClassVar[str] = "vrrp_script"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The name ``track_script { NAME }`` refers to."""
    script: Script
    """The command (``user`` is folded into it)."""
    interval: float = 1.0
    """Seconds between runs (0 is raised to 1)."""
    timeout: float = 1.0
    """Seconds before a run counts as failed (defaults to ``interval``)."""
    weight: int = 0
    """-253..253; 0: tracking instances go to FAULT while the script fails."""
    weight_reverse: bool = False
    """``weight N reverse``: the contribution is negated."""
    rise: int = 1
    """Successes needed to become OK."""
    fall: int = 1
    """Failures needed to become failed."""
    init_fail: bool = False
    """Start in the failed state instead of letting the first run decide."""


@dataclass(frozen=True, slots=True)
class BfdInstance:
    """``bfd_instance NAME { … }``: a BFD session (RFC 5880)."""

    kind: ClassVar[str] = "bfd_instance"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The name ``track_bfd { NAME }`` refers to."""
    neighbor_ip: IPAddress
    """The peer (``neighbor_ip`` or ``neighbour_ip``)."""
    source_ip: IPAddress | None = None
    """Local address of the session (None: chosen by routing)."""
    min_rx: float = 10.0
    """Required minimum receive interval, ms."""
    min_tx: float = 10.0
    """Desired minimum transmit interval, ms."""
    idle_tx: float = 1000.0
    """Transmit interval while the session is down, ms."""
    multiplier: int = 5
    """Detection time multiplier."""
    passive: bool = False
    """Wait for the peer to start the session."""
    ttl: int | None = None
    """TTL/hop limit of sent packets (``ttl``/``hoplimit``; None: 255 for IPv4, 64 for IPv6)."""
    max_hops: int = 0
    """Maximum hops of received packets (255: no check)."""
    multihop: bool = False
    """Use the multihop port 4784."""
    weight: int = 0
    """-253..253; 0: tracking instances go to FAULT while the session is down."""
    weight_reverse: bool = False
    """``weight N reverse``: the contribution is negated."""
    vrrp: bool = False
    """Only the VRRP process gets this session's events (with ``checker`` false)."""
    checker: bool = False
    """Only the checker process gets this session's events (with ``vrrp`` false)."""


# ---- groups -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncGroup:
    """``vrrp_sync_group NAME { … }``: instances that change state together."""

    kind: ClassVar[str] = "vrrp_sync_group"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The group's name."""
    members: tuple[str, ...]
    """vrrp_instance names (``group { … }``)."""
    track_interfaces: tuple[TrackRef, ...] = ()
    """``track_interface``: applies to every member (weights -253..253)."""
    track_scripts: tuple[TrackRef, ...] = ()
    """``track_script``: applies to every member (weights -253..253)."""
    track_files: tuple[TrackRef, ...] = ()
    """``track_file``: applies to every member (weights -254..254)."""
    track_processes: tuple[TrackRef, ...] = ()
    """``track_process``: applies to every member (weights -254..254)."""
    track_bfds: tuple[TrackRef, ...] = ()
    """``track_bfd``: applies to every member (weights -253..253)."""
    notify_master: Script | None = None
    """Run when the group becomes MASTER."""
    notify_backup: Script | None = None
    """Run when the group becomes BACKUP."""
    notify_fault: Script | None = None
    """Run when the group goes to FAULT."""
    notify_stop: Script | None = None
    """Run when the group stops."""
    notify: Script | None = None
    """Generic notify script, called with ``GROUP NAME STATE 0`` appended."""
    notify_priority_changes: bool | None = None
    """None: global ``vrrp_notify_priority_changes``."""
    smtp_alert: bool | None = None
    """None: global ``smtp_alert_vrrp``, then ``smtp_alert``, then off."""
    sync_group_tracking_weight: bool = False
    """Let members keep weighted trackers (also set by the deprecated ``global_tracking``)."""


@dataclass(frozen=True, slots=True)
class GarpGroup:
    """``garp_group { … }``: rate limits for gratuitous ARP / unsolicited NA per interface."""

    kind: ClassVar[str] = "garp_group"
    """The keyword of this block (for dumps and messages)."""
    interfaces: tuple[str, ...]
    """``interface IF`` and ``interfaces { … }`` together."""
    garp_interval: float | None = None
    """Seconds between gratuitous ARPs (None: global ``vrrp_garp_interval``)."""
    gna_interval: float | None = None
    """Seconds between unsolicited NAs (None: global ``vrrp_gna_interval``)."""


# ---- vrrp_instance ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnicastPeer:
    """One line of ``unicast_peer``: ``IP [min_ttl N] [max_ttl N]``."""

    address: IPAddress
    """The peer's address (same family as the instance)."""
    min_ttl: int | None = None
    """Lowest TTL accepted from this peer (turns on source checking)."""
    max_ttl: int | None = None
    """Highest TTL accepted from this peer (turns on source checking)."""


@dataclass(frozen=True, slots=True)
class Authentication:
    """``authentication { auth_type …; auth_pass … }`` (VRRPv2 only)."""

    auth_type: AuthType
    """PASS: clear-text password; AH: IPsec-AH HMAC-MD5-96 (IPv4 only)."""
    auth_pass: str
    """The password or key, at most 8 characters (longer ones are truncated)."""


@dataclass(frozen=True, slots=True)
class AuthHmacKey:
    """``key ID SECRET`` of ``auth_hmac``."""

    id: int
    """Key id 1..255."""
    secret: str
    """As written: ``hex:…``, ``file:…`` or ASCII text."""


@dataclass(frozen=True, slots=True)
class AuthHmac:
    """``auth_hmac { … }``: keepalived's HMAC-SHA256 advert trailer."""

    keys: tuple[AuthHmacKey, ...] = ()
    """``key ID SECRET`` lines."""
    active_key: int | None = None
    """Key id used to sign (None: the first key)."""
    anti_replay: Literal["time", "monotonic"] | None = None
    """Replay protection clock (None: off)."""
    time_window: int | None = None
    """Seconds of accepted clock skew (1..300; None: max(3 * advert_int, 5))."""
    mode: Literal["enforce", "permissive", "receive-only"] = "enforce"
    """enforce: drop bad adverts; permissive: log them; receive-only: do not sign."""


@dataclass(frozen=True, slots=True)
class UseVmac:
    """``use_vmac [[name] IFNAME] [MAC] [netlink_notify_msg] [group G]``."""

    name: str | None = None
    """Interface name (None: ``vrrp.VRID``/``vrrp6.VRID`` with global ``vmac_prefix``)."""
    mac: str | None = None
    """MAC address (5 octets: the VRID is appended); None: 00:00:5e:00:01:VRID (IPv4) or
    00:00:5e:00:02:VRID (IPv6)."""
    netlink_notify_msg: bool = False
    """Send a netlink notification when the VMAC is created."""
    group: str | None = None
    """Interface group of the VMAC."""


@dataclass(frozen=True, slots=True)
class Ipvlan:
    """``use_ipvlan [[name] IF] [IP[/LEN]] [bridge|private|vepa] [group G]``."""

    name: str | None = None
    """Interface name (None: chosen like a VMAC's)."""
    address: IPNetwork | None = None
    """Address of the ipvlan interface, also used as the advert source address."""
    mode: Literal["bridge", "private", "vepa"] = "bridge"
    """ipvlan mode flag."""
    group: str | None = None
    """Interface group of the ipvlan."""


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    """``vrrp_instance NAME { … }``: one VRRP router."""

    kind: ClassVar[str] = "vrrp_instance"
    """The keyword of this block (for dumps and messages)."""
    name: str
    """The instance's name (``vrrp_instance NAME``)."""
    virtual_router_id: int
    """VRID 1..255; the same on every router of the group."""
    state: InitialState = "BACKUP"
    """Initial state (unset: MASTER when ``priority`` is 255, else BACKUP)."""
    priority: int = 100
    """Base priority 1..255 (unset: 255 with ``state MASTER``, else 100; 255 is the owner)."""
    interface: str | None = None
    """Interface adverts are sent on (may be omitted only for unicast with a source IP)."""
    vrf: str | None = None
    """VRF interface for a unicast instance without ``interface``."""
    family: AddressFamily = 4
    """Address family of the instance (from its first address; IPv4 when it has none)."""
    version: Literal[2, 3] | None = None
    """VRRP version (None: global ``vrrp_version``; IPv6 instances are always 3)."""
    advert_int: float = 1.0
    """Advertisement interval as configured (0.01..255 s). VRRPv2 uses whole seconds
    (1..255), VRRPv3 centiseconds (up to 40.95): see :meth:`effective_advert_int`."""
    strict_mode: bool | None = None
    """RFC strict mode (None: global ``vrrp_strict``)."""

    # --- addresses ---
    virtual_ipaddress: tuple[VipAddress, ...] = ()
    """VIPs carried in adverts (same family as the instance)."""
    virtual_ipaddress_excluded: tuple[VipAddress, ...] = ()
    """Addresses added and removed with the VIPs but not advertised (any family)."""
    no_virtual_ipaddress: bool = False
    """The instance deliberately has no VIP (no warning)."""
    virtual_routes: tuple[Route, ...] = ()
    """Routes added on MASTER and removed when leaving it."""
    virtual_rules: tuple[Rule, ...] = ()
    """Rules added on MASTER and removed when leaving it."""
    promote_secondaries: bool = False
    """Set the interface's promote_secondaries sysctl."""

    # --- election ---
    nopreempt: bool = False
    """Do not take over from a lower-priority master (needs state BACKUP and priority < 255)."""
    preempt_delay: float = 0.0
    """Seconds to wait before preempting a lower-priority master (0..1000)."""
    accept: bool | None = None
    """Accept packets to the VIPs while MASTER (``accept``/``no_accept``). None: yes, except in
    strict mode where only the owner accepts; see :meth:`effective_accept`."""
    skip_check_adv_addr: bool | None = None
    """Do not compare the advertised addresses (None: global ``vrrp_skip_check_adv_addr``)."""
    down_timer_adverts: int | None = None
    """Missed adverts before MASTER is declared down (1..100; None: global
    ``vrrp_down_timer_adverts``, 3)."""
    lower_prio_no_advert: bool | None = None
    """Do not answer a lower-priority advert (None: global; strict mode forces true)."""
    higher_prio_send_advert: bool | None = None
    """Send one advert before yielding to a higher priority (None: global; strict: false)."""
    owner_ignore_adverts: bool | None = None
    """As owner, ignore every advert (None: global ``vrrp_owner_ignore_adverts``)."""
    timer_expired_backup: int | None = None
    """With nopreempt: priority 1..254 assumed for the others when the master timer expires
    (``thread_timer_expired`` is an alias; None: off)."""
    v3_checksum_as_v2: bool | None = None
    """VRRPv3 over IPv4: checksum without the pseudo-header (None: global)."""

    # --- unicast and addressing ---
    src_ip: IPAddress | None = None
    """Advert source address (``mcast_src_ip`` or ``unicast_src_ip``)."""
    track_src_ip: bool = False
    """Go to FAULT when ``src_ip`` disappears from the interface."""
    mcast_dst_ip: IPAddress | None = None
    """Multicast group (None: global ``vrrp_mcast_group4``/``vrrp_mcast_group6``)."""
    unicast_peers: tuple[UnicastPeer, ...] = ()
    """Peers of a unicast instance (``unicast_peer { … }``)."""
    unicast: bool = False
    """A unicast keyword was used (unicast_peer, unicast_src_ip, unicast_fault_no_peer,
    check_unicast_src, old_unicast_checksum)."""
    unicast_fault_no_peer: bool = False
    """With no peers: FAULT instead of falling back to multicast."""
    unicast_ttl: int | None = None
    """TTL of unicast adverts (0..255; None: 255 for IPv4, the kernel's default for IPv6)."""
    check_unicast_src: bool = False
    """Drop adverts whose source is not a peer (or global ``vrrp_check_unicast_src``)."""
    old_unicast_checksum: Literal["config", "never"] | None = None
    """Checksum compatibility with keepalived < 1.3.6 unicast (``old_unicast_checksum
    [never]``)."""

    # --- authentication ---
    authentication: Authentication | None = None
    """VRRPv2 authentication; ignored (with a warning) for VRRPv3, IPv6 and strict mode."""
    auth_hmac: AuthHmac | None = None
    """HMAC-SHA256 advert authentication (instead of ``authentication``)."""

    # --- interfaces ---
    use_vmac: UseVmac | None = None
    """Send from a macvlan with the virtual MAC."""
    use_vmac_addr: bool = False
    """Put VIPs that are not on the instance's interface on VMACs too."""
    vmac_xmit_base: bool = False
    """Send and receive adverts on the VMAC's parent interface."""
    use_ipvlan: Ipvlan | None = None
    """Send from an ipvlan interface instead of a macvlan."""
    dont_track_primary: bool = False
    """Do not go to FAULT when the instance's own interface goes down."""
    linkbeat_use_polling: bool = False
    """Deprecated: poll link state of the interface (use ``linkbeat_interfaces``)."""
    kernel_rx_buf_size: int | None = None
    """Receive buffer size of the advert socket (None: keepalived's choice)."""

    # --- trackers ---
    track_interfaces: tuple[TrackRef, ...] = ()
    """``track_interface``: weight -253..253 (None or 0: FAULT when down)."""
    track_scripts: tuple[TrackRef, ...] = ()
    """``track_script``: weight -253..253 (None: the vrrp_script's weight)."""
    track_files: tuple[TrackRef, ...] = ()
    """``track_file``: weight -254..254 (None: the track_file's weight)."""
    track_processes: tuple[TrackRef, ...] = ()
    """``track_process``: weight -254..254 (None: the vrrp_track_process's weight)."""
    track_bfds: tuple[TrackRef, ...] = ()
    """``track_bfd``: weight -253..253 (None: the bfd_instance's weight)."""

    # --- GARP ---
    garp_master_delay: int | None = None
    """Seconds before the second GARP burst after becoming MASTER (None: global)."""
    garp_master_repeat: int | None = None
    """GARPs per burst (≥ 1; None: global)."""
    garp_master_refresh: int | None = None
    """Seconds between periodic GARPs while MASTER (0: off; None: global)."""
    garp_master_refresh_repeat: int | None = None
    """GARPs per periodic refresh (≥ 1; None: global)."""
    garp_lower_prio_delay: int | None = None
    """Seconds before the second burst after a lower-priority advert (None: global)."""
    garp_lower_prio_repeat: int | None = None
    """GARPs sent after a lower-priority advert (None: global)."""
    garp_extra_if: GarpExtraIf | None = None
    """``garp_extra_if [all] SECS``: periodic GARPs on other interfaces than the VMAC's
    (None: global ``vrrp_garp_extra_if``)."""

    # --- notifications ---
    notify_master: Script | None = None
    """Run on becoming MASTER."""
    notify_backup: Script | None = None
    """Run on becoming BACKUP."""
    notify_fault: Script | None = None
    """Run on entering FAULT."""
    notify_stop: Script | None = None
    """Run when the instance stops."""
    notify_deleted: bool = False
    """Report state DELETED (instead of STOP) when the instance is removed by a reload."""
    notify_deleted_script: Script | None = None
    """Script run on deletion (``notify_deleted CMD``)."""
    notify_master_rx_lower_pri: Script | None = None
    """Run when MASTER receives a lower-priority advert."""
    notify: Script | None = None
    """Generic notify script, called with ``INSTANCE NAME STATE PRIORITY`` appended."""
    notify_priority_changes: bool | None = None
    """Send priority changes to the notify FIFO (None: the sync group's, then global)."""
    smtp_alert: bool | None = None
    """None: global ``smtp_alert_vrrp``, then ``smtp_alert``, then off."""

    # --- legacy ---
    lvs_sync_daemon_interface: str | None = None
    """Deprecated: same as global ``lvs_sync_daemon IF NAME``."""
    debug: int = 0
    """Debug level 0..4 (no effect)."""

    # --- derived rules ---------------------------------------------------------------------

    def effective_version(self, global_version: int = 2) -> Literal[2, 3]:
        """The VRRP version used: this instance's, else 3 for IPv6, else ``vrrp_version``."""
        if self.version is not None:
            return self.version
        if self.family == 6 or global_version == 3:
            return 3
        return 2

    def effective_strict(self, global_strict: bool = False) -> bool:
        """Whether strict RFC mode applies."""
        return global_strict if self.strict_mode is None else self.strict_mode

    def effective_accept(self, strict: bool, version: int) -> bool:
        """Whether packets to the VIPs are accepted while MASTER (else firewalled).

        Unset: true, except in strict mode where only the owner accepts. Strict mode refuses
        ``accept`` for a non-owner VRRPv2 instance (RFC 3768)."""
        owner = self.priority == PRIO_OWNER
        accept = (owner or not strict) if self.accept is None else self.accept
        if accept and strict and not owner and version == 2:
            return False
        return accept

    def effective_advert_int(self, version: int) -> float:
        """The interval used on the wire: whole seconds 1..255 for VRRPv2 (rounded to the
        nearest), centiseconds 0.01..40.95 for VRRPv3."""
        if version == 2:
            return float(min(max(math.floor(self.advert_int + 0.5), 1), 255))
        centi = min(max(math.floor(self.advert_int * 100 + 0.5), 1), 4095)
        return centi / 100

    @property
    def is_owner(self) -> bool:
        """Priority 255: the address owner."""
        return self.priority == PRIO_OWNER


@dataclass(frozen=True, slots=True)
class VrrpConfig:
    """Everything the VRRP process reads from the configuration (each tuple in file order)."""

    static_ipaddress: tuple[VipAddress, ...] = ()
    """Addresses added at start and restored when deleted."""
    static_routes: tuple[Route, ...] = ()
    """Routes added at start and restored when deleted."""
    static_rules: tuple[Rule, ...] = ()
    """Rules added at start and restored when deleted."""
    track_groups: tuple[TrackGroup, ...] = ()
    """``track_group`` blocks."""
    linkbeat_interfaces: tuple[LinkbeatInterface, ...] = ()
    """Interfaces whose link state is polled."""
    interface_up_down_delays: tuple[InterfaceUpDownDelay, ...] = ()
    """Link-state debounce delays per interface."""
    track_files: tuple[TrackFile, ...] = ()
    """``track_file``/``vrrp_track_file`` blocks."""
    track_processes: tuple[TrackProcess, ...] = ()
    """``vrrp_track_process`` blocks."""
    bfd_instances: tuple[BfdInstance, ...] = ()
    """``bfd_instance`` blocks."""
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    """``vrrp_script`` blocks."""
    vrrp_sync_groups: tuple[SyncGroup, ...] = ()
    """``vrrp_sync_group`` blocks."""
    garp_groups: tuple[GarpGroup, ...] = ()
    """``garp_group`` blocks."""
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    """``vrrp_instance`` blocks."""
