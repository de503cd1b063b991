# Sourced by the e2e scripts. private_binary NAME PROFILE puts a private copy of the
# `failover` binary in BIN: FAILOVER_BIN when set, else a fresh cargo build of PROFILE
# (release or debug). A copy, because the target directory may be shared with other
# builds that overwrite it while a long run goes on. The copy's directory is removed
# on exit.
private_binary() {
  local name="$1" profile="$2"
  PRIVATE_DIR="$(mktemp -d "/tmp/${name}.XXXXXX")"
  trap 'rm -rf "$PRIVATE_DIR"' EXIT
  if [[ -n "${FAILOVER_BIN:-}" ]]; then
    cp "$FAILOVER_BIN" "$PRIVATE_DIR/failover"
  else
    local root cargo_flags=()
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    [[ "$profile" == release ]] && cargo_flags+=(--release)
    (cd "$root" && cargo build --quiet "${cargo_flags[@]}") >&2
    cp "${CARGO_TARGET_DIR:-$root/target}/$profile/failover" "$PRIVATE_DIR/failover"
  fi
  BIN="$PRIVATE_DIR/failover"
}
