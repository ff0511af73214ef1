#!/bin/sh
# Runs INSIDE the virtme-ng guest (see tests/vm/runner.py): loads IPVS, runs tests/ipvs with
# pytest and leaves the output and the exit status in the shared scratch directory $1.
out="$1"; shift
repo="$1"; shift
python="$1"; shift
start=$(cut -d' ' -f1 /proc/uptime)
echo "guest: kernel $(uname -r), up ${start}s before the tests" > "$out/guest.log"
# one modprobe for all (each process start is slow under emulation); ip_vs_twos is newer than
# Debian 12's kernel, so a missing module is only logged
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh \
    ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_pe_sip ipip ip6_tunnel \
    veth bridge dummy >> "$out/guest.log" 2>&1 || echo "guest: a module did not load" >> "$out/guest.log"
modprobe ip_vs_twos >> "$out/guest.log" 2>&1 || echo "guest: no ip_vs_twos (older kernel)" >> "$out/guest.log"
echo "guest: modules loaded at $(cut -d' ' -f1 /proc/uptime)s" >> "$out/guest.log"
cd "$repo" || exit 99
export PYTHONDONTWRITEBYTECODE=1 PYKEEPALIVED_IN_VM=1 HOME=/tmp
[ $# -eq 0 ] && set -- tests/ipvs
"$python" -m pytest -p no:cacheprovider -q "$@" > "$out/pytest.log" 2>&1
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
echo "guest: pytest exit $rc, tests took $(echo "$end $start" | awk '{print $1-$2}')s" >> "$out/guest.log"
echo "$rc" > "$out/rc"
sync
