#!/usr/bin/env bash
# Chart tests with real Helm (Helm's Go SDK through helm-python-sdk): lint, render
# with defaults and every toggle, RBAC and security checks (tests/chart/test_chart.py),
# then every rendered document deserialized into its k8s-openapi type
# (tests/chart_manifests.rs). Makes its own virtualenv under the cargo target
# directory; exits non-zero, naming the failed part, on any failure.
set -euo pipefail

cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="${TARGET}/chart-venv"
export CHART_RENDERED_DIR="${TARGET}/chart-rendered"
# No __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1

fail() {
    echo "==> chart tests FAILED: $*" >&2
    exit 1
}

if [[ ! -x "${VENV}/bin/python" ]]; then
    python3 -m venv "${VENV}" || fail "cannot create the virtualenv ${VENV} (apt-get install python3-venv)"
fi
# Pinned so a new SDK release cannot change what "lint" means under us.
"${VENV}/bin/pip" install --quiet --disable-pip-version-check \
    'helm-python-sdk==0.2.2' 'pytest>=8,<10' 'PyYAML>=6,<7' ||
    fail "cannot install helm-python-sdk, pytest and PyYAML from PyPI"

"${VENV}/bin/python" -m pytest -q -p no:cacheprovider tests/chart ||
    fail "pytest tests/chart"

# The pytest run wrote the rendered documents; now the k8s-openapi types read them.
FAILOVER_CHART_RENDERED="${CHART_RENDERED_DIR}" cargo test --locked --test chart_manifests ||
    fail "cargo test --test chart_manifests"
echo "==> chart tests passed"
