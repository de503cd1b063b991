#!/usr/bin/env bash
# Failover benchmark on the network-namespace lab (3 node namespaces + a client on one
# bridge, see src/lab; the witness-* scenarios: a pair and a `failover witness`
# namespace; the link-cut-* ones: a second bridge, two heartbeat links). Prints one
# JSON line per implementation and scenario, e.g.
#   {"impl":"keepalived-advert1","scenario":"kill-owner","runs":10,"outage_ms":{…},"split_brain":0,"dual_holder_ms":…,…}
# The timing-sensitive part runs in Rust (`failover lab bench`); this is the entry point.
#
# Usage: e2e/bench-failover.sh [--runs N] [--peer keepalived] [--scenarios a,b,…]
#                              [--cpu-load] [--debug] [-- extra args for `failover lab bench`]
# --cpu-load keeps one busy worker per core running through every run (a loaded
# machine); the JSON lines then carry "cpu_load":true.
# Needs root, iproute2, nftables (partition, oneway-loss, witness-partition,
# link-cut-both); --peer keepalived installs
# keepalived (Debian package) when missing. FAILOVER_BIN=path skips the build.
set -euo pipefail

RUNS=10
PEERS=()
SCENARIOS="kill-owner,link-down,graceful-stop,failback,partition,oneway-loss,paused-member,service-failure,service-order,witness-kill-owner,witness-partition,link-cut-one,link-cut-both"
PROFILE=release
EXTRA=()
LOAD=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --peer) PEERS+=("$2"); shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --cpu-load) LOAD=(--cpu-load); shift ;;
    --debug) PROFILE=debug; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-failover: unknown argument $1" >&2; exit 2 ;;
  esac
done

die() { echo "bench-failover: $*" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || die "needs root (network namespaces, veths, nftables)"
command -v ip >/dev/null || die "needs iproute2 (ip)"
if [[ ",$SCENARIOS," =~ ,(partition|oneway-loss|witness-partition|link-cut-both), ]]; then
  command -v nft >/dev/null || apt-get install -y nftables >&2 || die "needs nftables (nft)"
fi
for peer in "${PEERS[@]}"; do
  case "$peer" in
    keepalived) command -v keepalived >/dev/null || apt-get install -y keepalived >&2 || die "cannot install keepalived" ;;
    *) die "unknown peer $peer (supported: keepalived)" ;;
  esac
done

# shellcheck source=e2e/private-binary.sh
source "$(dirname "$0")/private-binary.sh"
private_binary bench-failover "$PROFILE"
"$BIN" lab --help >/dev/null 2>&1 || die "$BIN has no 'lab' subcommand (stale or foreign binary)"

IMPLS=()
if "$BIN" agent --help >/dev/null 2>&1; then
  IMPLS+=(failover)
else
  echo "bench-failover: skipping impl failover: '$BIN agent --help' fails — the agent does not exist in this build yet" >&2
fi
for peer in "${PEERS[@]}"; do
  [[ "$peer" == keepalived ]] && IMPLS+=(keepalived-advert1 keepalived-advert0.01)
done
[[ ${#IMPLS[@]} -gt 0 ]] || die "nothing to measure (no agent yet; try --peer keepalived)"

IFS=, read -r -a SCEN <<<"$SCENARIOS"
for impl in "${IMPLS[@]}"; do
  for scenario in "${SCEN[@]}"; do
    if [[ "$impl" == keepalived* && "$scenario" =~ ^(paused-member|service-failure|service-order)$ ]]; then
      echo "bench-failover: $impl: scenario $scenario does not apply (VRRP has no paused members and runs no service of ours)" >&2
      continue
    fi
    if [[ "$impl" == keepalived* && "$scenario" =~ ^(witness-|link-cut-) ]]; then
      echo "bench-failover: $impl: scenario $scenario does not apply (VRRP has no witness, and an instance adverts over one interface)" >&2
      continue
    fi
    rc=0
    "$BIN" lab bench --impl "$impl" --scenario "$scenario" --runs "$RUNS" "${LOAD[@]}" "${EXTRA[@]}" || rc=$?
    case "$rc" in
      0) ;;
      3) echo "bench-failover: skipped $impl/$scenario (see above)" >&2 ;;
      *) echo "bench-failover: $impl/$scenario failed (exit $rc)" >&2 ;;
    esac
  done
done
