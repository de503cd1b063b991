#!/usr/bin/env bash
# Build or remove a network-namespace lab for manual experiments (see src/lab/topology.rs).
#   e2e/lab.sh up [NODES]     → prints the lab prefix; namespaces <prefix>-n1..nN, <prefix>-c, <prefix>-sw
#   e2e/lab.sh down PREFIX    → kills the lab's processes and deletes only its namespaces
# Nodes have 10.77.0.(10+i)/24 and fd77::(10+i)/64 on eth0; the client has 10.77.0.2/24.
set -euo pipefail
BIN="${FAILOVER_BIN:-}"
if [[ -z "$BIN" ]]; then
  ROOT="$(cd "$(dirname "$0")/.." && pwd)"
  (cd "$ROOT" && cargo build --quiet) >&2
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/failover"
fi
case "${1:-}" in
  up) exec "$BIN" lab up --nodes "${2:-3}" ;;
  down) [[ -n "${2:-}" ]] || { echo "usage: $0 down PREFIX" >&2; exit 2; }; exec "$BIN" lab down --prefix "$2" ;;
  *) echo "usage: $0 up [NODES] | down PREFIX" >&2; exit 2 ;;
esac
