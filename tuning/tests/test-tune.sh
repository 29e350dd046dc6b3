#!/usr/bin/env bash
# Tests lanegate-tune's check / apply / revert / --dry-run against a scratch
# sysctl root, so the host is never touched. Proves that revert restores
# exactly what apply changed, and that a host without a knob degrades to a
# note rather than a failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tune="$here/../lanegate-tune"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

export LANEGATE_SYSCTL_ROOT="$scratch/sys"
export LANEGATE_SYSCTL_D="$scratch/sysctl.d"
export LANEGATE_TUNE_STATE="$scratch/state"

fail() { echo "FAIL: $*" >&2; exit 1; }

# A fake host: stock-kernel values, one knob better than the profile (a big
# udp_mem), and no io_uring_disabled (a pre-6.6 kernel).
put() { mkdir -p "$(dirname "$LANEGATE_SYSCTL_ROOT/${1//.//}")"; printf '%s\n' "$2" > "$LANEGATE_SYSCTL_ROOT/${1//.//}"; }
put net.core.rmem_max 212992
put net.core.wmem_max 212992
put net.core.rmem_default 212992
put net.core.wmem_default 212992
put net.core.netdev_max_backlog 1000
put net.core.netdev_budget 300
put net.core.netdev_budget_usecs 8000
put net.core.busy_poll 0
put net.core.busy_read 0
put net.ipv4.udp_mem "575667	767559	1151334"
put net.ipv4.udp_rmem_min 4096
put net.ipv4.udp_wmem_min 4096
put net.ipv4.ip_local_port_range "32768	60999"
put net.core.somaxconn 4096   # not in the profile: must never change

snapshot() { (cd "$LANEGATE_SYSCTL_ROOT" && find . -type f -print0 | sort -z | xargs -0 -I{} sh -c 'printf "%s=" "{}"; cat "{}"'); }
before=$(snapshot)

# check: off settings are reported and the exit code says so.
if out=$("$tune" check); then fail "check passed on an untuned host"; fi
grep -q 'net.core.rmem_max .*212992 .*16777216 .*LOW' <<<"$out" || fail "rmem_max not LOW: $out"
grep -q 'net.ipv4.ip_local_port_range .*HIGH' <<<"$out" || fail "port range not HIGH"
grep -q 'net.ipv4.udp_mem .*OK' <<<"$out" || fail "a larger udp_mem should be OK"
grep -q 'kernel.io_uring_disabled .*ABSENT' <<<"$out" || fail "absent knob not reported"

# --dry-run changes nothing and lists the changes.
out=$("$tune" apply --dry-run)
[ "$(snapshot)" = "$before" ] || fail "--dry-run modified the host"
grep -q 'would  net.core.rmem_max: 212992 -> 16777216' <<<"$out" || fail "dry-run output: $out"
! grep -q udp_mem <<<"$out" || fail "dry-run would lower a better default"
[ ! -e "$LANEGATE_TUNE_STATE/saved.conf" ] || fail "--dry-run saved state"

# apply: afterwards check passes, and only off keys were touched.
"$tune" apply >/dev/null
"$tune" check >/dev/null || fail "check fails after apply"
[ "$(cat "$LANEGATE_SYSCTL_ROOT/net/core/rmem_max")" = 16777216 ] || fail "rmem_max not applied"
[ "$(cat "$LANEGATE_SYSCTL_ROOT/net/ipv4/udp_mem")" = "575667	767559	1151334" ] || fail "udp_mem was lowered"
[ "$(cat "$LANEGATE_SYSCTL_ROOT/net/core/somaxconn")" = 4096 ] || fail "a key outside the profile changed"
grep -q '^net.core.rmem_max = 16777216$' "$LANEGATE_SYSCTL_D/90-lanegate.conf" || fail "profile not installed"
! grep -q udp_mem "$LANEGATE_SYSCTL_D/90-lanegate.conf" || fail "installed file holds an unchanged key"

# A second apply keeps the original snapshot, not the tuned values.
"$tune" apply >/dev/null
grep -q $'^net.core.rmem_max\t212992$' "$LANEGATE_TUNE_STATE/saved.conf" || fail "saved values overwritten"

# revert restores exactly what apply changed, and removes what it installed.
"$tune" revert >/dev/null
after=$(snapshot)
[ "$after" = "$before" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "revert did not restore the host exactly"; }
[ ! -e "$LANEGATE_SYSCTL_D/90-lanegate.conf" ] || fail "installed profile left behind"
if "$tune" revert 2>/dev/null; then fail "a second revert should refuse: nothing saved"; fi

# Host helpers degrade cleanly where the host lacks the knob.
export LANEGATE_SYS_ROOT="$scratch/fakesys" LANEGATE_PROC_ROOT="$scratch/fakeproc"
mkdir -p "$LANEGATE_SYS_ROOT/class/net/lo" "$LANEGATE_PROC_ROOT"
: > "$LANEGATE_PROC_ROOT/interrupts"
out=$("$tune" governor); grep -q 'no cpufreq control' <<<"$out" || fail "governor: $out"
out=$("$tune" irqs 0); grep -qE 'no physical NICs|every CPU' <<<"$out" || fail "irqs: $out"
out=$("$tune" isolcpus 1); grep -q 'isolcpus=managed_irq,domain,1' <<<"$out" || fail "isolcpus: $out"

echo "lanegate-tune: all checks passed"
