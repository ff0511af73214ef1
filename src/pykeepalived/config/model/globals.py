"""The ``global_defs`` model (reference §3.2), with keepalived's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Literal

from pykeepalived.config.model.common import IPAddress, Script

__all__ = [
    "Fifo",
    "GarpExtraIf",
    "GlobalDefs",
    "LvsSyncDaemon",
    "LvsTimeouts",
    "NetlinkBufs",
    "ProcessTuning",
    "ReloadCheck",
    "SmtpServer",
]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """``smtp_server IP|FQDN [PORT]``."""

    host: str
    """An IP address literal or a host name."""
    port: int = 25
    """TCP port of the mail server."""
    address: IPAddress | None = None
    """The address when ``host`` is an IP literal."""


@dataclass(frozen=True, slots=True)
class Fifo:
    """``notify_fifo NAME [user [group]]``: a FIFO that receives event lines."""

    path: str
    """The FIFO (created if missing)."""
    user: str | None = None
    """Owner of a created FIFO."""
    group: str | None = None
    """Group of a created FIFO."""


@dataclass(frozen=True, slots=True)
class GarpExtraIf:
    """``vrrp_garp_extra_if [all] SECS``: GARPs on the VMAC's parent interface."""

    delay: int
    """Seconds between the extra GARPs."""
    all: bool = False
    """Also on interfaces other than the parent."""


@dataclass(frozen=True, slots=True)
class LvsSyncDaemon:
    """``lvs_sync_daemon IF [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]``."""

    interface: str
    """Interface the IPVS sync daemon sends and listens on."""
    instance: str | None = None
    """The VRRP instance whose state selects master/backup (None: run both)."""
    sync_id: int | None = None
    """syncid 0..255 (None: the kernel default)."""
    maxlen: int | None = None
    """Largest sync message in bytes."""
    port: int = 8848
    """UDP port of the sync messages."""
    ttl: int | None = None
    """TTL of the multicast sync messages."""
    group: IPAddress | None = None
    """Multicast group (None: the kernel default 224.0.0.81)."""


@dataclass(frozen=True, slots=True)
class LvsTimeouts:
    """``lvs_timeouts [tcp S] [tcpfin S] [udp S]`` (None: leave the kernel value)."""

    tcp: int | None = None
    """Seconds an established TCP connection entry lives."""
    tcpfin: int | None = None
    """Seconds a TCP entry lives after FIN."""
    udp: int | None = None
    """Seconds a UDP entry lives."""


@dataclass(frozen=True, slots=True)
class ReloadCheck:
    """``reload_check_config [LOGFILE]``: test-parse before a reload."""

    log_file: str | None = None
    """Where the check's diagnostics go (None: the log)."""


@dataclass(frozen=True, slots=True)
class ProcessTuning:
    """Scheduling settings of one process (``vrrp_*``, ``checker_*`` or ``bfd_*`` keywords)."""

    priority: int | None = None
    """Nice value -20..19."""
    no_swap: bool = False
    """Lock the process in memory."""
    rt_priority: int | None = None
    """Realtime priority 1..99."""
    rlimit_rttime: int | None = None
    """RLIMIT_RTTIME in µs."""
    cpu_affinity: tuple[int, ...] = ()
    """CPUs the process may run on."""


@dataclass(frozen=True, slots=True)
class NetlinkBufs:
    """A netlink receive-buffer size and whether to force it past rmem_max."""

    size: int
    """Receive buffer size in bytes."""
    force: bool = False
    """Exceed net.core.rmem_max (SO_RCVBUFFORCE)."""


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    """Everything in ``global_defs { … }``."""

    # ---- identity and e-mail ----------------------------------------------------------------
    router_id: str | None = None
    """Names this director in alerts (None: the host name)."""
    notification_email: tuple[str, ...] = ()
    """Alert recipients."""
    notification_email_from: str | None = None
    """Sender address (None: ``keepalived@<hostname>``)."""
    smtp_server: SmtpServer | None = None
    """Mail server for alerts (None: no e-mail)."""
    smtp_helo_name: str | None = None
    """HELO name (None: the host name)."""
    smtp_connect_timeout: float = 30.0
    """Seconds to connect to the mail server."""
    smtp_alert: bool | None = None
    """Default for every object's ``smtp_alert`` (None: built-in default)."""
    smtp_alert_vrrp: bool | None = None
    """Default ``smtp_alert`` of VRRP instances and sync groups."""
    smtp_alert_checker: bool | None = None
    """Default ``smtp_alert`` of virtual and real servers."""
    no_email_faults: bool = False
    """Send no e-mail for FAULT transitions."""
    no_checker_emails: bool = False
    """Mail only when a real server's alive state really changes."""
    checker_log_all_failures: bool = False
    """Log every failed check, not only state changes."""

    # ---- processes and scripts ------------------------------------------------------------------
    process_names: bool = False
    """Give the child processes their own names."""
    process_name: str | None = None
    """Name of the parent process."""
    vrrp_process_name: str | None = None
    """Name of the VRRP process."""
    checker_process_name: str | None = None
    """Name of the checker process."""
    bfd_process_name: str | None = None
    """Name of the BFD process."""
    vrrp_tuning: ProcessTuning = ProcessTuning()
    """Scheduling of the VRRP process (``vrrp_priority`` …)."""
    checker_tuning: ProcessTuning = ProcessTuning()
    """Scheduling of the checker process (``checker_priority`` …)."""
    bfd_tuning: ProcessTuning = ProcessTuning()
    """Scheduling of the BFD process (``bfd_priority`` …)."""
    max_auto_priority: int | None = None
    """Highest realtime priority raised automatically (-1: none)."""
    min_auto_priority_delay: int = 1_000_000
    """µs."""
    script_user: str | None = None
    """Default user for scripts (None: ``keepalived_script`` if it exists, else root)."""
    script_group: str | None = None
    """Default group for scripts (None: the user's group)."""
    enable_script_security: bool = False
    """Refuse scripts that a non-root user could change, when run as root."""
    use_symlink_paths: bool = False
    """Do not resolve symbolic links in script paths."""
    set_supplementary_groups: bool = False
    """Give scripts their user's supplementary groups."""
    startup_script: Script | None = None
    """Run once before the children start."""
    startup_script_timeout: int = 10
    """Seconds the startup script may take."""
    shutdown_script: Script | None = None
    """Run once after the children stopped."""
    shutdown_script_timeout: int = 10
    """Seconds the shutdown script may take."""
    umask: int | None = None
    """Process umask (None: keepalived's 0177)."""
    random_seed: int | None = None
    """Seed of the random numbers (timers, ``${_RANDOM}``)."""

    # ---- notify FIFOs ------------------------------------------------------------------------
    notify_fifo: Fifo | None = None
    """FIFO that receives every VRRP and LVS event line."""
    notify_fifo_script: Script | None = None
    """Reader started for ``notify_fifo`` (the path is appended)."""
    vrrp_notify_fifo: Fifo | None = None
    """FIFO that receives the VRRP event lines."""
    vrrp_notify_fifo_script: Script | None = None
    """Reader started for ``vrrp_notify_fifo``."""
    lvs_notify_fifo: Fifo | None = None
    """FIFO that receives the virtual/real server event lines."""
    lvs_notify_fifo_script: Script | None = None
    """Reader started for ``lvs_notify_fifo``."""
    vrrp_notify_priority_changes: bool = False
    """Also send MASTER_PRIORITY / BACKUP_PRIORITY events."""
    fifo_write_vrrp_states_on_reload: bool = False
    """Write every VRRP state to the FIFOs after a reload."""

    # ---- VRRP defaults -------------------------------------------------------------------------
    vrrp_mcast_group4: IPv4Address = IPv4Address("224.0.0.18")
    """IPv4 multicast group of the adverts."""
    vrrp_mcast_group6: IPv6Address = IPv6Address("ff02::12")
    """IPv6 multicast group of the adverts."""
    default_interface: str = "eth0"
    """Interface of static addresses and VIPs without ``dev``."""
    vrrp_version: Literal[2, 3] = 2
    """VRRP version of IPv4 instances (IPv6 always uses 3)."""
    vrrp_garp_master_delay: int = 5
    """Seconds before the second GARP burst (0: none)."""
    vrrp_garp_master_repeat: int = 5
    """Gratuitous ARPs per burst on becoming master."""
    vrrp_garp_lower_prio_delay: int | None = None
    """None: the same as ``vrrp_garp_master_delay``."""
    vrrp_garp_lower_prio_repeat: int | None = None
    """None: the same as ``vrrp_garp_master_repeat``."""
    vrrp_garp_master_refresh: int = 0
    """Seconds between refresh bursts while master (0: none)."""
    vrrp_garp_master_refresh_repeat: int = 1
    """Gratuitous ARPs per refresh burst."""
    vrrp_garp_interval: float = 0.0
    """Seconds between gratuitous ARPs on one interface."""
    vrrp_gna_interval: float = 0.0
    """Seconds between unsolicited neighbour advertisements."""
    vrrp_min_garp: bool = False
    """One gratuitous ARP and no second burst."""
    vrrp_garp_extra_if: GarpExtraIf | None = None
    """Extra gratuitous ARPs on a VMAC's parent interface."""
    vrrp_down_timer_adverts: int = 3
    """Adverts missed before the master is declared down."""
    vrrp_lower_prio_no_advert: bool = False
    """A master does not answer a lower-priority advert."""
    vrrp_higher_prio_send_advert: bool = False
    """A master sends one advert before yielding."""
    vrrp_owner_ignore_adverts: bool = False
    """An address owner ignores all adverts."""
    v3_checksum_as_v2: bool = False
    """VRRPv3/IPv4 checksum without the pseudo-header (RFC 9568)."""
    vrrp_check_unicast_src: bool = False
    """Drop unicast adverts from addresses that are not peers."""
    vrrp_skip_check_adv_addr: bool = False
    """Do not compare advert addresses while the master is unchanged."""
    vrrp_strict: bool = False
    """Strict RFC mode (reference §4.1); firewalls the VIPs."""
    vrrp_startup_delay: float = 0.0
    """Seconds all instances wait before starting."""
    vrrp_delay_after_boot: float = 0.0
    """Seconds after boot before instances start."""
    log_unknown_vrids: bool = False
    """Log adverts for VRIDs we have no instance for."""
    vmac_prefix: str = "vrrp"
    """Name prefix of VMAC interfaces."""
    vmac_addr_prefix: str | None = None
    """Name prefix of VMAC interfaces created with ``use_vmac_addr``."""
    dynamic_interfaces: bool = False
    """Interfaces may appear and disappear while running."""
    dynamic_interfaces_allow_if_changes: bool = False
    """… and may change their index."""
    disable_local_igmp: bool = False
    """Send no IGMP/MLD reports for the VRRP groups."""
    vrrp_rx_bufs_policy: tuple[str, ...] = ()
    """How the advert receive buffers are sized."""
    vrrp_rx_bufs_multiplier: int = 3
    """Multiplier of that size."""
    vrrp_netlink_cmd_rcv_bufs: NetlinkBufs | None = None
    """Receive buffer of the VRRP netlink command socket."""
    vrrp_netlink_monitor_rcv_bufs: NetlinkBufs | None = None
    """Receive buffer of the VRRP netlink monitor socket."""
    lvs_netlink_cmd_rcv_bufs: NetlinkBufs | None = None
    """Receive buffer of the checker netlink command socket."""
    lvs_netlink_monitor_rcv_bufs: NetlinkBufs | None = None
    """Receive buffer of the checker netlink monitor socket."""
    process_monitor_rcv_bufs: NetlinkBufs | None = None
    """Receive buffer of the process-event connector socket."""

    # ---- firewall ------------------------------------------------------------------------------
    nftables: str | None = None
    """nftables table for no_accept/VMAC rules (None: chosen automatically, 'keepalived')."""
    nftables_priority: int = -1
    """Priority of the nftables chains."""
    nftables_counters: bool = False
    """Add counters to the nftables rules."""
    nftables_ifindex: bool = False
    """Match interfaces by index, not name."""
    vrrp_iptables: tuple[str, ...] | None = None
    """iptables chains for no_accept rules (instead of nftables)."""
    vrrp_ipsets: tuple[str, ...] | None = None
    """ipset names used with ``vrrp_iptables``."""
    nftables_ipvs: str | None = None
    """nftables table that maps virtual_server_groups to fwmarks."""
    nftables_ipvs_priority: int | None = None
    """Priority of that table's chains."""
    nftables_ipvs_start_fwmark: int = 1000
    """First fwmark given to a group."""

    # ---- LVS -------------------------------------------------------------------------------------
    lvs_sync_daemon: LvsSyncDaemon | None = None
    """The IPVS connection-sync daemon."""
    lvs_timeouts: LvsTimeouts | None = None
    """IPVS connection timeouts."""
    lvs_flush: bool = False
    """Flush the whole IPVS table at start."""
    lvs_flush_on_stop: Literal["off", "all", "vs"] = "off"
    """``all``: flush everything at stop; ``vs``: only the configured virtual servers."""
    lb_backend: Literal["auto", "ipvs", "nftables", "proxy", "memory"] = "auto"
    """pykeepalived extension: the load-balancer dataplane (``auto``: the best available)."""

    # ---- SNMP and DBus ---------------------------------------------------------------------------
    snmp_socket: str | None = None
    """AgentX master socket."""
    enable_snmp_vrrp: bool = False
    """Serve the VRRP part of KEEPALIVED-MIB."""
    enable_snmp_checker: bool = False
    """Serve the checker part of KEEPALIVED-MIB."""
    enable_snmp_rfc: bool = False
    """Serve both RFC VRRP MIBs."""
    enable_snmp_rfcv2: bool = False
    """Serve VRRP-MIB (RFC 2787)."""
    enable_snmp_rfcv3: bool = False
    """Serve VRRPv3-MIB (RFC 6527)."""
    enable_traps: bool = False
    """Send SNMP traps."""
    snmp_vs_stats_update_interval: float = 5.0
    """Seconds between IPVS service statistics reads."""
    snmp_rs_stats_update_interval: float = 5.0
    """Seconds between IPVS destination statistics reads."""
    enable_dbus: bool = False
    """Serve the DBus interface."""
    dbus_service_name: str | None = None
    """DBus service name (None: org.keepalived.Vrrp1)."""
    dbus_no_interface_name: str = "none"
    """Path element used for instances without an interface."""

    # ---- reload and config handling -------------------------------------------------------------
    reload_check_config: ReloadCheck | None = None
    """Test-parse before reloading (pykeepalived always does)."""
    reload_time_file: str | None = None
    """File holding the time of a scheduled reload."""
    reload_repeat: bool = False
    """Repeat the scheduled reload daily."""
    reload_file: str | None = None
    """File that exists while a configuration is being read."""
    tmp_config_directory: str | None = None
    """Where the parent keeps the config copy for its children."""
    config_save_dir: str | None = None
    """Where each loaded configuration is saved."""

    # ---- dump files ------------------------------------------------------------------------------
    data_use_instance: bool = False
    """Put the instance name in the dump file names."""
    state_dump_file: str | None = None
    """Directory and/or name of the SIGUSR1 data dump."""
    stats_dump_file: str | None = None
    """Name of the SIGUSR2 statistics file."""
    json_dump_file: str | None = None
    """Name of the JSON dump."""
    json_version: Literal[1, 2] = 1
    """Layout of the JSON dump (1: array, 2: object)."""

    # ---- misc -----------------------------------------------------------------------------------
    iproute_usr_dir: str | None = None
    """Where iproute2's shipped name tables are."""
    iproute_etc_dir: str | None = None
    """Where iproute2's local name tables (rt_tables …) are."""
    rs_init_notifies: bool = False
    """Send real-server UP notifies at startup."""
