"""LVS side of the configuration (reference §3.8 to §3.11, §4.4).

Virtual server groups, virtual servers, real servers and their health checkers. Every value
is *effective*: defaults are filled in, aliases are resolved and the timing keywords of the
checkers are inherited (checker → real server → virtual server → built-in default), so that the
checker and load-balancer code never has to know keepalived's defaulting rules.

Which values were written in the file (rather than inherited or defaulted) is recorded in the
load result's source map: ``srcmap.objects[id(obj)][1]`` maps each field written in ``obj``'s
block to its statement, and ``srcmap.stmt(obj, "retry")`` is that statement (or the block's
own statement when the value was inherited).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import ClassVar, Literal

from pykeepalived.config.model.common import IPAddress, Script

__all__ = [
    "DNS_TYPES",
    "SCHEDULERS",
    "AddressService",
    "BfdCheck",
    "Checker",
    "CheckerTiming",
    "ConnectedChecker",
    "DnsCheck",
    "DnsType",
    "Family",
    "FileCheck",
    "ForwardingMethod",
    "FwmarkService",
    "GroupService",
    "HttpGetCheck",
    "HttpProtocol",
    "LvsConfig",
    "LvsMethod",
    "MiscCheck",
    "PingCheck",
    "Protocol",
    "RealServer",
    "Scheduler",
    "SendExpectCheck",
    "ServiceId",
    "SmtpCheck",
    "SorryServer",
    "SslConfig",
    "SslGetCheck",
    "TcpCheck",
    "TunnelChecksum",
    "TunnelType",
    "UdpCheck",
    "UrlSpec",
    "VirtualServer",
    "VirtualServerGroup",
    "VsgEntry",
    "VsgFwmark",
    "VsgRange",
]

Scheduler = Literal[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"
]
"""IPVS scheduler names (``lvs_sched``); keepalived checks the name against this list."""
SCHEDULERS: tuple[str, ...] = typing.get_args(Scheduler)

Protocol = Literal["TCP", "UDP", "SCTP"]
Family = Literal["inet", "inet6"]
ForwardingMethod = Literal["NAT", "DR", "TUN"]
TunnelType = Literal["ipip", "gue", "gre"]
TunnelChecksum = Literal["nocsum", "csum", "remcsum"]
HttpProtocol = Literal["1.0", "1.0C", "1.1"]
DnsType = Literal["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"]
DNS_TYPES: tuple[str, ...] = typing.get_args(DnsType)


# ---- top-level SSL block ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SslConfig:
    """``SSL { … }``: the client TLS context of SSL_GET checkers (none: an automatic one)."""

    password: str | None = None
    """Password of the private key."""
    ca: str | None = None
    """CA certificate file (SSL_GET does no certificate verification either way)."""
    certificate: str | None = None
    """Client certificate file."""
    key: str | None = None
    """Private key file of the client certificate."""


# ---- virtual_server_group -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VsgRange:
    """A group entry of addresses: ``IP [PORT]``, ``a.b.c.d-e``, ``a.b.c.d-e.f.g.h``, CIDR."""

    first: IPAddress
    """First address of the range."""
    last: IPAddress
    """Last address of the range (equal to ``first`` for a single address)."""
    port: int = 0
    """Service port; 0 when none was given (only valid for persistent services)."""

    def dump_label(self) -> str:
        """How the text dump names this entry."""
        addr = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{addr} {self.port}" if self.port else addr


@dataclass(frozen=True, slots=True)
class VsgFwmark:
    """A group entry ``fwmark N [inet|inet6]``."""

    fwmark: int
    """The firewall mark."""
    family: Family | None = None
    """Address family of the mark (None: not given)."""

    def dump_label(self) -> str:
        """How the text dump names this entry."""
        return f"fwmark {self.fwmark} {self.family or ''}".rstrip()


VsgEntry = VsgRange | VsgFwmark


@dataclass(frozen=True, slots=True)
class VirtualServerGroup:
    """``virtual_server_group NAME { … }``: services that share one set of real servers."""

    name: str
    """The group name, referred to by ``virtual_server group NAME``."""
    entries: tuple[VsgEntry, ...] = ()
    """The member services, in file order."""

    @property
    def has_addresses(self) -> bool:
        """True when the group has address entries (not only fwmarks)."""
        return any(type(e) is VsgRange for e in self.entries)

    @property
    def has_fwmarks(self) -> bool:
        """True when the group has fwmark entries."""
        return any(type(e) is VsgFwmark for e in self.entries)


# ---- service identity, forwarding method, sorry server -------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressService:
    """``virtual_server IP [PORT]``."""

    address: IPAddress
    """The virtual IP address."""
    port: int = 0
    """The service port; 0 means every port (a persistent service)."""

    def dump_label(self) -> str:
        """How the text dump names this service."""
        return f"{self.address} {self.port}"


@dataclass(frozen=True, slots=True)
class FwmarkService:
    """``virtual_server fwmark N``."""

    fwmark: int
    """The firewall mark that selects the packets of this service."""

    def dump_label(self) -> str:
        """How the text dump names this service."""
        return f"fwmark {self.fwmark}"


@dataclass(frozen=True, slots=True)
class GroupService:
    """``virtual_server group NAME``."""

    group: str
    """Name of the ``virtual_server_group`` whose entries are the services."""

    def dump_label(self) -> str:
        """How the text dump names this service."""
        return f"group {self.group}"


ServiceId = AddressService | FwmarkService | GroupService


@dataclass(frozen=True, slots=True)
class LvsMethod:
    """``lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]``."""

    method: ForwardingMethod = "NAT"
    """The IPVS forwarding method."""
    tunnel_type: TunnelType | None = None
    """Encapsulation for TUN (ipip by default); None for NAT and DR."""
    tunnel_port: int | None = None
    """Destination UDP port of GUE encapsulation (required for gue, only for gue)."""
    tunnel_checksum: TunnelChecksum | None = None
    """Checksum option for TUN (nocsum by default); None for NAT and DR."""


@dataclass(frozen=True, slots=True)
class SorryServer:
    """``sorry_server IP [PORT]``, ``sorry_server_inhibit``, ``sorry_server_lvs_method``."""

    address: IPAddress
    """Address of the server used while the quorum is lost."""
    port: int = 0
    """Its port (port rules as for real servers: the VS port unless NAT)."""
    inhibit: bool = False
    """Add it with weight 0 instead of removing it (``sorry_server_inhibit``)."""
    lvs_method: LvsMethod = LvsMethod()
    """Its forwarding method (default: the virtual server's)."""


# ---- checkers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckerTiming:
    """Scheduling keywords every checker but FILE_CHECK and BFD_CHECK takes (effective values)."""

    delay_loop: float = 60.0
    """Seconds between two checks (checker → real server → virtual server → 60)."""
    retry: int = 1
    """Failed retries before the checker goes down (built-in: 1, MISC_CHECK 0, DNS_CHECK 3)."""
    rise: int = 1
    """Consecutive successes a failed checker needs to come back up (checker → real server →
    virtual server → 1). A pykeepalived extension; keepalived behaves as ``rise 1``."""
    delay_before_retry: float = 1.0
    """Seconds before a retry (built-in: 1, HTTP_GET/SSL_GET 3, DNS_CHECK delay_loop)."""
    warmup: float = 60.0
    """The first check runs after 1 s + random(0..warmup) seconds (default: delay_loop)."""
    alpha: bool = False
    """Start in the failed state (alpha mode; checker → real server → virtual server)."""
    log_all_failures: bool = False
    """Log every failure, not only state changes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectedChecker(CheckerTiming):
    """Connection keywords of the checkers that open a connection (effective values)."""

    connect_ip: IPAddress
    """Address to check (default: the real server's address)."""
    connect_port: int = 0
    """Port to check (default: the real server's effective port; 0 when it has none)."""
    bindto: IPAddress | None = None
    """Source address of the check."""
    bind_port: int | None = None
    """Source port of the check."""
    bind_if: str | None = None
    """Source interface (needed for an IPv6 link-local address)."""
    fwmark: int | None = None
    """SO_MARK of the checker's socket."""
    connect_timeout: float = 5.0
    """Seconds to wait for the connection/answer (checker → RS → VS → 5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpCheck(ConnectedChecker):
    """``TCP_CHECK``: a TCP connect that completes within ``connect_timeout``."""

    kind: Literal["TCP_CHECK"] = "TCP_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlSpec:
    """``url { … }`` of HTTP_GET and SSL_GET."""

    path: str
    """Request path."""
    digest: str | None = None
    """Expected MD5 of the body, 32 lower-case hex digits."""
    status_codes: tuple[tuple[int, int], ...] = ((200, 299),)
    """Accepted status codes as sorted, merged inclusive ranges (default 200-299)."""
    virtualhost: str | None = None
    """Host header for this URL (overrides the checker's)."""
    regex: str | None = None
    """PCRE2 pattern the body must match."""
    regex_no_match: bool = False
    """The body must *not* match ``regex``."""
    regex_options: tuple[str, ...] = ()
    """PCRE2 compile options (``caseless``, ``multiline``, …)."""
    regex_stack: tuple[int, int] | None = None
    """JIT stack (start, max) sizes."""
    regex_min_offset: int | None = None
    """Earliest body offset where the match may start."""
    regex_max_offset: int | None = None
    """Latest body offset where the match may start."""
    tls_compliant: bool = False
    """Wait for the TLS close_notify (SSL_GET)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _HttpChecker(ConnectedChecker):
    """Keywords shared by HTTP_GET and SSL_GET."""

    urls: tuple[UrlSpec, ...] = ()
    """URLs checked in turn; all must pass."""
    http_protocol: HttpProtocol = "1.0"
    """HTTP version of the request (1.0C adds ``Connection: close``)."""
    virtualhost: str | None = None
    """Host header (checker → real server → virtual server; None: ``ip:port``)."""
    fast_recovery: bool = False
    """No delay between URLs while recovering or at startup."""
    enable_sni: bool = False
    """Send SNI (SSL_GET)."""
    sni_name: str | None = None
    """Server name to send with SNI (default: the Host header)."""
    tls_compliant: bool = False
    """Wait for the TLS close_notify (SSL_GET)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpGetCheck(_HttpChecker):
    """``HTTP_GET``: every URL answers with an accepted status (and digest/regex)."""

    kind: Literal["HTTP_GET"] = "HTTP_GET"
    """Discriminator of the :data:`Checker` union."""
    tls: ClassVar[bool] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SslGetCheck(_HttpChecker):
    """``SSL_GET``: HTTP_GET over TLS (no certificate verification), on ``connect_port``."""

    kind: Literal["SSL_GET"] = "SSL_GET"
    """Discriminator of the :data:`Checker` union."""
    tls: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class MiscCheck(CheckerTiming):
    """``MISC_CHECK``: a script; exit 0 is success (with misc_dynamic 2..255 set the weight)."""

    misc_path: Script
    """The command, with the ``user`` keyword folded into ``user``/``group``."""
    misc_timeout: float = 60.0
    """Seconds before the script is killed (default: the virtual server's delay_loop)."""
    misc_dynamic: bool = False
    """Exit codes 2..255 set the real server's weight to ``code - 2``."""
    kind: Literal["MISC_CHECK"] = "MISC_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpCheck(ConnectedChecker):
    """``SMTP_CHECK``: banner 220, ``HELO name`` answered 250, QUIT.

    Each deprecated ``host { … }`` sub-block becomes one more SmtpCheck with its own target.
    """

    helo_name: str = "smtpchecker.keepalived.org"
    """Name sent with HELO."""
    kind: Literal["SMTP_CHECK"] = "SMTP_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsCheck(ConnectedChecker):
    """``DNS_CHECK``: a UDP query answered with the same id, QR set and RCODE 0."""

    type: DnsType = "SOA"
    """Query type."""
    name: str = "."
    """Query name."""
    kind: Literal["DNS_CHECK"] = "DNS_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpCheck(ConnectedChecker):
    """``UDP_CHECK``: no ICMP error within connect_timeout (or a matching reply)."""

    payload: bytes | None = None
    """Datagram sent (None: random bytes)."""
    require_reply: bool = False
    """A reply is needed for success."""
    reply_data: bytes | None = None
    """Expected start of the reply (None: any reply)."""
    reply_mask: bytes | None = None
    """Per byte of ``reply_data``, the bits that are wildcards (X nibbles); None: no wildcard."""
    min_reply_length: int = 0
    """Shortest acceptable reply."""
    max_reply_length: int = 255
    """Longest acceptable reply."""
    kind: Literal["UDP_CHECK"] = "UDP_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PingCheck(ConnectedChecker):
    """``PING_CHECK``: an ICMP/ICMPv6 echo reply (``connect_port`` is not used)."""

    kind: Literal["PING_CHECK"] = "PING_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendExpectCheck(ConnectedChecker):
    """``SEND_EXPECT_CHECK`` (pykeepalived extension, after Piranha's nanny): connect, send
    ``send``, and succeed when the answer matches ``expect``; or run ``send_program`` and
    match its output instead of talking to the server."""

    send: bytes | None = None
    """Bytes written once connected (escapes decoded); None: nothing is sent."""
    expect: str | None = None
    """The answer must start with it (with ``use_regex``: contain a match of it); None:
    connecting (and sending) is enough."""
    use_regex: bool = False
    """``expect`` is a regular expression (Python ``re`` syntax)."""
    send_program: Script | None = None
    """Run instead of the exchange (``%h`` in its words is the checked address); its standard
    output is matched against ``expect``, or exit status 0 is success without ``expect``."""
    kind: Literal["SEND_EXPECT_CHECK"] = "SEND_EXPECT_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCheck:
    """``FILE_CHECK``: the value in a tracked file, times ``weight``, adjusts the RS weight."""

    track_file: str
    """Name of a ``track_file`` block."""
    weight: int | None = None
    """Multiplier (None: the track_file's own weight); 0 means non-zero = failed."""
    reverse: bool = False
    """Use the negated value."""
    kind: Literal["FILE_CHECK"] = "FILE_CHECK"
    """Discriminator of the :data:`Checker` union."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdCheck:
    """``BFD_CHECK``: the named BFD session is up."""

    name: str
    """Name of a ``bfd_instance``."""
    alpha: bool = False
    """Start in the failed state (checker → real server → virtual server)."""
    kind: Literal["BFD_CHECK"] = "BFD_CHECK"
    """Discriminator of the :data:`Checker` union."""


Checker = (
    TcpCheck
    | HttpGetCheck
    | SslGetCheck
    | MiscCheck
    | SmtpCheck
    | DnsCheck
    | UdpCheck
    | PingCheck
    | SendExpectCheck
    | FileCheck
    | BfdCheck
)


# ---- real and virtual servers --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RealServer:
    """``real_server IP [PORT] { … }`` (effective values; see the module docstring)."""

    address: IPAddress
    """Address of the real server."""
    port: int = 0
    """Effective port: the VS port when none is given (or not NAT); 0 for fwmark DR/TUN."""
    weight: int = 1
    """IPVS weight (default: the virtual server's ``weight``, 1)."""
    lvs_method: LvsMethod = LvsMethod()
    """Forwarding method (default: the virtual server's)."""
    uthreshold: int | None = None
    """Upper connection limit."""
    lthreshold: int | None = None
    """Lower connection limit."""
    inhibit_on_failure: bool = False
    """On failure set weight 0 instead of removing (default: the virtual server's)."""
    alpha: bool = False
    """Alpha mode for its checkers (default: the virtual server's)."""
    retry: int | None = None
    """As written here; None: inherited (the checkers carry the effective value)."""
    delay_before_retry: float | None = None
    """As written here; None: inherited (the checkers carry the effective value)."""
    warmup: float | None = None
    """As written here; None: inherited (the checkers carry the effective value)."""
    connect_timeout: float | None = None
    """As written here; None: inherited (the checkers carry the effective value)."""
    delay_loop: float | None = None
    """As written here; None: inherited (the checkers carry the effective value)."""
    rise: int | None = None
    """As written here; None: inherited (the checkers carry the effective value). A
    pykeepalived extension."""
    slow_start: float = 0.0
    """Seconds over which the weight ramps up after the server comes back (default: the
    virtual server's; 0: off). A pykeepalived extension (HAProxy's ``slowstart``)."""
    notify_up: Script | None = None
    """Run when the real server comes up."""
    notify_down: Script | None = None
    """Run when the real server goes down."""
    smtp_alert: bool | None = None
    """Send e-mail on changes; None: global ``smtp_alert_checker``/``smtp_alert``, else on."""
    virtualhost: str | None = None
    """Default Host header of its HTTP checkers."""
    snmp_name: str | None = None
    """Name in the SNMP MIB."""
    checkers: tuple[Checker, ...] = ()
    """Health checkers; the server is alive when all are up (always, without checkers)."""

    def dump_label(self) -> str:
        """How the text dump names this real server."""
        return f"{self.address} {self.port}" if self.port else str(self.address)


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServer:
    """``virtual_server IP [PORT] | fwmark N | group NAME { … }`` (effective values)."""

    service: ServiceId
    """What traffic the service matches."""
    protocol: Protocol | None = "UDP"
    """Transport protocol (missing: UDP, like keepalived); None for fwmark-only services."""
    lvs_sched: Scheduler = "wlc"
    """IPVS scheduler (``lb_algo`` is the same keyword)."""
    lvs_method: LvsMethod = LvsMethod()
    """Default forwarding method of the real servers (``lb_kind`` is the same keyword)."""
    persistence_timeout: int | None = None
    """Persistence in seconds; None: not persistent."""
    persistence_granularity: IPv4Address | int | None = None
    """Persistence netmask (IPv4) or prefix length (IPv6)."""
    persistence_engine: str | None = None
    """Persistence engine (``sip``)."""
    hashed: bool = False
    """Scheduler flag ``hashed``."""
    ops: bool = False
    """One-packet scheduling (UDP only)."""
    flag_1: bool = False
    """Scheduler flag ``flag-1``."""
    flag_2: bool = False
    """Scheduler flag ``flag-2``."""
    flag_3: bool = False
    """Scheduler flag ``flag-3``."""
    sh_port: bool = False
    """``sh-port`` (sh scheduler only)."""
    sh_fallback: bool = False
    """``sh-fallback`` (sh scheduler only)."""
    mh_port: bool = False
    """``mh-port`` (mh scheduler only)."""
    mh_fallback: bool = False
    """``mh-fallback`` (mh scheduler only)."""
    ha_suspend: bool = False
    """Run the checkers only while the virtual address is configured locally."""
    alpha: bool = False
    """Start every checker in the failed state (default for real servers)."""
    omega: bool = False
    """Run quorum_down/notify_down and alerts on shutdown too."""
    quorum: int = 1
    """Minimum total weight of alive real servers (clamped to the sum of weights)."""
    hysteresis: int = 0
    """Quorum hysteresis (clamped to quorum - 1)."""
    quorum_up: Script | None = None
    """Run when the quorum is gained."""
    quorum_down: Script | None = None
    """Run when the quorum is lost."""
    sorry_server: SorryServer | None = None
    """Server used while the quorum is lost."""
    inhibit_on_failure: bool = False
    """Default ``inhibit_on_failure`` of the real servers."""
    delay_loop: float = 60.0
    """Default check interval."""
    connect_timeout: float = 5.0
    """Default connection timeout of the checkers."""
    retry: int | None = None
    """Default retry count (None: each checker's built-in default)."""
    delay_before_retry: float | None = None
    """Default delay before a retry (None: each checker's built-in default)."""
    warmup: float | None = None
    """Default warmup (None: the checker's delay_loop)."""
    rise: int | None = None
    """Default ``rise`` of the checkers (None: 1). A pykeepalived extension."""
    slow_start: float = 0.0
    """Default ``slow_start`` of the real servers (0: off). A pykeepalived extension."""
    virtualhost: str | None = None
    """Default Host header of the HTTP checkers."""
    smtp_alert: bool | None = None
    """Send e-mail on quorum changes; None: global ``smtp_alert_checker``/``smtp_alert``."""
    snmp_name: str | None = None
    """Name in the SNMP MIB."""
    ip_family: Family | None = None
    """Address family of the service (from the address, ``ip_family`` or the real servers)."""
    weight: int = 1
    """Default weight of the real servers (undocumented keyword)."""
    nat_mask: IPv4Address | None = None
    """keepalived 1.x ``nat_mask`` (Linux 2.2 only); kept, has no effect."""
    real_servers: tuple[RealServer, ...] = ()
    """The real servers, in file order (at least one)."""

    def dump_label(self) -> str:
        """How the text dump names this virtual server."""
        label = self.service.dump_label()
        return f"{label} {self.protocol}" if self.protocol else label


@dataclass(frozen=True, slots=True)
class LvsConfig:
    """Everything the checker process reads from the configuration."""

    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    """``virtual_server_group`` blocks, in file order."""
    virtual_servers: tuple[VirtualServer, ...] = ()
    """``virtual_server`` blocks, in file order."""
    ssl: SslConfig | None = None
    """The ``SSL`` block (None: SSL_GET uses an automatic context)."""
