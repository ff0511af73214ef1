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
    address: IPAddress | None = None
    """The address when ``host`` is an IP literal."""


@dataclass(frozen=True, slots=True)
class Fifo:
    """``notify_fifo NAME [user [group]]``: a FIFO that receives event lines."""

    path: str
    user: str | None = None
    group: str | None = None


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
    instance: str | None = None
    """The VRRP instance whose state selects master/backup (None: run both)."""
    sync_id: int | None = None
    maxlen: int | None = None
    port: int = 8848
    ttl: int | None = None
    group: IPAddress | None = None
    """Multicast group (None: the kernel default 224.0.0.81)."""


@dataclass(frozen=True, slots=True)
class LvsTimeouts:
    """``lvs_timeouts [tcp S] [tcpfin S] [udp S]`` (None: leave the kernel value)."""

    tcp: int | None = None
    tcpfin: int | None = None
    udp: int | None = None


@dataclass(frozen=True, slots=True)
class ReloadCheck:
    """``reload_check_config [LOGFILE]``: test-parse before a reload."""

    log_file: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessTuning:
    """Scheduling settings of one process (``vrrp_*``, ``checker_*`` or ``bfd_*`` keywords)."""

    priority: int | None = None
    """Nice value -20..19."""
    no_swap: bool = False
    rt_priority: int | None = None
    """Realtime priority 1..99."""
    rlimit_rttime: int | None = None
    """RLIMIT_RTTIME in µs."""
    cpu_affinity: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class NetlinkBufs:
    """A netlink receive-buffer size and whether to force it past rmem_max."""

    size: int
    force: bool = False


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
    smtp_helo_name: str | None = None
    """HELO name (None: the host name)."""
    smtp_connect_timeout: float = 30.0
    smtp_alert: bool | None = None
    """Default for every object's ``smtp_alert`` (None: built-in default)."""
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False
    no_checker_emails: bool = False
    checker_log_all_failures: bool = False

    # ---- processes and scripts ------------------------------------------------------------------
    process_names: bool = False
    process_name: str | None = None
    vrrp_process_name: str | None = None
    checker_process_name: str | None = None
    bfd_process_name: str | None = None
    vrrp_tuning: ProcessTuning = ProcessTuning()
    checker_tuning: ProcessTuning = ProcessTuning()
    bfd_tuning: ProcessTuning = ProcessTuning()
    max_auto_priority: int | None = None
    min_auto_priority_delay: int = 1_000_000
    """µs."""
    script_user: str | None = None
    """Default user for scripts (None: ``keepalived_script`` if it exists, else root)."""
    script_group: str | None = None
    enable_script_security: bool = False
    use_symlink_paths: bool = False
    set_supplementary_groups: bool = False
    startup_script: Script | None = None
    startup_script_timeout: int = 10
    shutdown_script: Script | None = None
    shutdown_script_timeout: int = 10
    umask: int | None = None
    """Process umask (None: keepalived's 0177)."""
    random_seed: int | None = None

    # ---- notify FIFOs ------------------------------------------------------------------------
    notify_fifo: Fifo | None = None
    notify_fifo_script: Script | None = None
    vrrp_notify_fifo: Fifo | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo: Fifo | None = None
    lvs_notify_fifo_script: Script | None = None
    vrrp_notify_priority_changes: bool = False
    fifo_write_vrrp_states_on_reload: bool = False

    # ---- VRRP defaults -------------------------------------------------------------------------
    vrrp_mcast_group4: IPv4Address = IPv4Address("224.0.0.18")
    vrrp_mcast_group6: IPv6Address = IPv6Address("ff02::12")
    default_interface: str = "eth0"
    vrrp_version: Literal[2, 3] = 2
    vrrp_garp_master_delay: int = 5
    """Seconds before the second GARP burst (0: none)."""
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_lower_prio_delay: int | None = None
    """None: the same as ``vrrp_garp_master_delay``."""
    vrrp_garp_lower_prio_repeat: int | None = None
    """None: the same as ``vrrp_garp_master_repeat``."""
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_min_garp: bool = False
    vrrp_garp_extra_if: GarpExtraIf | None = None
    vrrp_down_timer_adverts: int = 3
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_owner_ignore_adverts: bool = False
    v3_checksum_as_v2: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_strict: bool = False
    vrrp_startup_delay: float = 0.0
    vrrp_delay_after_boot: float = 0.0
    log_unknown_vrids: bool = False
    vmac_prefix: str = "vrrp"
    vmac_addr_prefix: str | None = None
    dynamic_interfaces: bool = False
    dynamic_interfaces_allow_if_changes: bool = False
    disable_local_igmp: bool = False
    vrrp_rx_bufs_policy: tuple[str, ...] = ()
    vrrp_rx_bufs_multiplier: int = 3
    vrrp_netlink_cmd_rcv_bufs: NetlinkBufs | None = None
    vrrp_netlink_monitor_rcv_bufs: NetlinkBufs | None = None
    lvs_netlink_cmd_rcv_bufs: NetlinkBufs | None = None
    lvs_netlink_monitor_rcv_bufs: NetlinkBufs | None = None
    process_monitor_rcv_bufs: NetlinkBufs | None = None

    # ---- firewall ------------------------------------------------------------------------------
    nftables: str | None = None
    """nftables table for no_accept/VMAC rules (None: chosen automatically, 'keepalived')."""
    nftables_priority: int = -1
    nftables_counters: bool = False
    nftables_ifindex: bool = False
    vrrp_iptables: tuple[str, ...] | None = None
    vrrp_ipsets: tuple[str, ...] | None = None
    nftables_ipvs: str | None = None
    nftables_ipvs_priority: int | None = None
    nftables_ipvs_start_fwmark: int = 1000

    # ---- LVS -------------------------------------------------------------------------------------
    lvs_sync_daemon: LvsSyncDaemon | None = None
    lvs_timeouts: LvsTimeouts | None = None
    lvs_flush: bool = False
    """Flush the whole IPVS table at start."""
    lvs_flush_on_stop: Literal["off", "all", "vs"] = "off"
    """``all``: flush everything at stop; ``vs``: only the configured virtual servers."""

    # ---- SNMP and DBus ---------------------------------------------------------------------------
    snmp_socket: str | None = None
    enable_snmp_vrrp: bool = False
    enable_snmp_checker: bool = False
    enable_snmp_rfc: bool = False
    enable_snmp_rfcv2: bool = False
    enable_snmp_rfcv3: bool = False
    enable_traps: bool = False
    snmp_vs_stats_update_interval: float = 5.0
    snmp_rs_stats_update_interval: float = 5.0
    enable_dbus: bool = False
    dbus_service_name: str | None = None
    dbus_no_interface_name: str = "none"

    # ---- reload and config handling -------------------------------------------------------------
    reload_check_config: ReloadCheck | None = None
    reload_time_file: str | None = None
    reload_repeat: bool = False
    reload_file: str | None = None
    tmp_config_directory: str | None = None
    config_save_dir: str | None = None

    # ---- dump files ------------------------------------------------------------------------------
    data_use_instance: bool = False
    state_dump_file: str | None = None
    stats_dump_file: str | None = None
    json_dump_file: str | None = None
    json_version: Literal[1, 2] = 1

    # ---- misc -----------------------------------------------------------------------------------
    iproute_usr_dir: str | None = None
    iproute_etc_dir: str | None = None
    rs_init_notifies: bool = False
