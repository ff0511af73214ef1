"""The firewall plan against what keepalived 2.2.7 really installed for the same
configurations (recorded with ``nft -j list ruleset`` in a network namespace, see
docs/nftables-vrrp.md; the listings are in ``test_firewall_recorded.json``): the
configuration goes through the same planning as the daemon (``plan_vrrp``,
``no_accept_owners``), and the resulting ruleset must equal keepalived's, structurally."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.config import load_text
from pykeepalived.net.firewall_plan import (
    Element,
    FirewallSpec,
    FirewallState,
    canonical,
    desired_ruleset,
    plan,
)
from pykeepalived.vrrp.plan import no_accept_owners, plan_vrrp

RECORDED: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).with_suffix(".json")).read_text(encoding="utf-8")
)

STRICT = """
global_defs {
  vrrp_strict
}
vrrp_instance VI_4 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  version 3
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101/32
  }
}
vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  version 3
  priority 100
  advert_int 1
  virtual_ipaddress {
    fe80::100/64
    2001:db8::100/64
  }
}
"""

KNOBS = """
global_defs {
  nftables kaltest
  nftables_priority -5
  nftables_counters
}
vrrp_instance VI_A {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 100
  advert_int 1
  no_accept
  virtual_ipaddress {
    192.0.2.110/24
  }
  virtual_ipaddress_excluded {
    198.51.100.1/32
  }
}
vrrp_instance VI_B {
  state BACKUP
  interface eth0
  virtual_router_id 62
  version 3
  priority 100
  advert_int 1
  no_accept
  dont_track_primary
  virtual_ipaddress {
    fe80::200/64
    2001:db8::200/64
  }
}
vrrp_instance VI_C {
  state BACKUP
  interface eth0
  virtual_router_id 63
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.120/24
  }
}
"""

BOTH_LINK_LOCAL = """
global_defs {
  vrrp_strict
}
vrrp_instance VI_B {
  state BACKUP
  interface eth0
  virtual_router_id 62
  version 3
  priority 100
  advert_int 1
  dont_track_primary
  virtual_ipaddress {
    fe80::200/64
    fe80::201/64 dev d0
    fe80::202/64 dev d0 no_track
    2001:db8::200/64
  }
}
vrrp_instance VI_D {
  state BACKUP
  interface eth0
  virtual_router_id 64
  version 3
  priority 255
  advert_int 1
  virtual_ipaddress {
    192.0.2.130/24
  }
}
"""


def master_state(text: str) -> tuple[FirewallSpec, FirewallState, list[str]]:
    """The firewall state with every instance MASTER, as the daemon would compute it."""
    result = load_text(textwrap.dedent(text))
    assert result.config is not None, result.diagnostics
    vrrp_plan = plan_vrrp(result.config)
    spec = FirewallSpec.from_globals(result.config.global_defs)
    owners = no_accept_owners(vrrp_plan)
    records = {p.name: p.records for p in vrrp_plan.instances}
    wanted: set[Element] = set()
    for name, rule in owners.items():
        wanted |= rule.elements(records[name].addresses, spec)
    state, _ = plan(spec, FirewallState(), wanted)
    return spec, state, sorted(owners)


@pytest.mark.parametrize(
    ("config", "recording", "owners"),
    [
        (STRICT, "strict_master", ["VI_4", "VI_6"]),
        (KNOBS, "knobs_master", ["VI_A", "VI_B"]),  # VI_C accepts
        (BOTH_LINK_LOCAL, "both_link_local_master", ["VI_B"]),  # VI_D is the owner
    ],
)
def test_master_ruleset_is_keepalived_s(config: str, recording: str, owners: list[str]) -> None:
    spec, state, no_accept = master_state(config)
    assert no_accept == owners
    ours = canonical(desired_ruleset(spec, state))
    assert ours == canonical(RECORDED[recording], table=spec.table)


def test_backup_after_master_keeps_the_tables_with_empty_sets() -> None:
    spec, master, _ = master_state(STRICT)
    backup, _ = plan(spec, master, [])
    ours = canonical(desired_ruleset(spec, backup))
    assert ours == canonical(RECORDED["strict_backup_after_master"])
    assert ours != canonical(RECORDED["strict_master"])
