#!/usr/bin/env bash
# Torture on the network-namespace lab: a seeded random schedule of faults (SIGKILL
# and restart, a kill during a takeover, SIGSTOP longer than deadAfter, link flaps,
# partitions, one-way loss, 30 % random loss, all agents restarted at once, CPU load
# bursts) over a 3- or 5-node cluster with several groups, watched throughout. Prints
# one JSON line:
#   {"seed":…,"duration_s":…,"faults":…,"split_brain_intervals":0,"double_holders":0,
#    "ownerless_quorate_ms_max":…,"moves":…,"unexplained_moves":0,"orphaned_vips":0}
# and exits non-zero when a safety counter is not zero or the cluster did not
# converge at the end. Same seed, same faults at the same offsets. See docs/torture.md.
#
# Usage: e2e/torture.sh --seed S --duration SECS [--debug] [-- extra args for
#        `failover lab torture`, e.g. --nodes 5 --print-schedule]
# Needs root, iproute2 and nftables. FAILOVER_BIN=path skips the build.
set -euo pipefail

SEED=""
DURATION=""
PROFILE=release
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seed) SEED="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "torture: unknown argument $1" >&2; exit 2 ;;
  esac
done

die() { echo "torture: $*" >&2; exit 1; }
[[ -n "$SEED" && -n "$DURATION" ]] || die "usage: e2e/torture.sh --seed S --duration SECS"
[[ "$(id -u)" == 0 ]] || die "needs root (network namespaces, veths, nftables)"
command -v ip >/dev/null || die "needs iproute2 (ip)"
command -v nft >/dev/null || die "needs nftables (nft)"

# shellcheck source=e2e/private-binary.sh
source "$(dirname "$0")/private-binary.sh"
private_binary torture "$PROFILE"
rc=0
"$BIN" lab torture --seed "$SEED" --duration "$DURATION" "${EXTRA[@]}" || rc=$?
exit "$rc"
