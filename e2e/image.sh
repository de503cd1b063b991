#!/usr/bin/env bash
# Builds the container image for real and starts it (issue 13, item 6).
#
# The Dockerfile's base images cannot be pulled everywhere; this script builds the
# same image without them: the static musl binary (the Dockerfile's build command)
# copied into an image `from scratch` with buildah, with the Dockerfile's layout
# (tests/dockerfile.rs checks that the two agree). Then podman starts it:
#   1. `failover --version` (the binary is static: a glibc build fails here with
#      `exec /usr/local/bin/failover: no such file or directory`);
#   2. the image's default user is not root and runs with a read-only root
#      filesystem (what the operator Deployment does);
#   3. the agent, standalone, inside a network namespace this script creates, as
#      the agent DaemonSet runs it: root in the container, every capability dropped
#      but NET_ADMIN and NET_RAW, read-only root filesystem, its config and key
#      mounted read-only; it must bring its VIP up in the namespace.
#
# Needs root (network namespaces). Installs what is missing (apt: buildah podman
# runc musl-tools; the rustup target). Writes the image as an OCI archive to
# ${CARGO_TARGET_DIR:-target}/image/failover-operator-VERSION.oci.tar, named
# localhost/failover-operator:VERSION (the chart's default image, docs/install.md);
# everything else it creates (image storage, containers, the namespace, temporary
# files) is removed on exit, whatever happens. Exits non-zero naming the failed check.
set -euo pipefail

cd "$(dirname "$0")/.."

# The image layout; tests/dockerfile.rs compares these with the Dockerfile.
IMAGE_BINARY=/usr/local/bin/failover
IMAGE_USER=65532:65532
IMAGE_ENTRYPOINT='["/usr/local/bin/failover"]'
IMAGE_CMD='["--help"]'
RUST_TARGET=x86_64-unknown-linux-musl
IMAGE_NAME=localhost/failover-operator

# Bounded waits: attempts of WAIT_STEP seconds each.
WAIT_ATTEMPTS=100
WAIT_STEP=0.1

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
VERSION="$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)"
ARCHIVE="${TARGET_DIR}/image/failover-operator-${VERSION}.oci.tar"

fail() {
    echo "==> image FAILED: $*" >&2
    exit 1
}

# The step running now, named by the exit trap when the script fails (set -e).
CURRENT_STEP="setup"

[[ "$(id -u)" == 0 ]] || fail "needs root (network namespaces, image storage)"
[[ -n "${VERSION}" ]] || fail "no version in Cargo.toml"

# rustup installs put cargo in ~/.cargo/bin, which a non-login shell may lack.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME}/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    source "${HOME}/.cargo/env"
fi

install_missing() {
    local missing=()
    command -v buildah >/dev/null 2>&1 || missing+=(buildah)
    command -v podman >/dev/null 2>&1 || missing+=(podman)
    command -v runc >/dev/null 2>&1 || missing+=(runc)
    command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if ((${#missing[@]} > 0)); then
        echo "==> installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! rustup target list --installed | grep -x "${RUST_TARGET}" >/dev/null; then
        rustup target add "${RUST_TARGET}"
    fi
}

# Everything this run creates lives under WORK (image storage included: the host's
# own podman/buildah storage is never touched) or is named with RUN_ID.
RUN_ID="fo-image-$$"
WORK="$(mktemp -d /tmp/failover-image.XXXXXX)"
NETNS="${RUN_ID}"
STORAGE=(--storage-driver vfs --root "${WORK}/storage" --runroot "${WORK}/run")
BUILDAH=(buildah "${STORAGE[@]}")
PODMAN=(podman "${STORAGE[@]}" --tmpdir "${WORK}/tmp" --events-backend file
    --runtime runc --cgroup-manager cgroupfs)
# crun refuses hybrid cgroup hierarchies. Podman's default open-file and process
# limits (about a million) are above what a root without CAP_SYS_RESOURCE (a
# container, a CI sandbox) may set: runc then fails with "error setting rlimits".
# Small explicit limits, ample for one agent (a few sockets, a few threads); on the
# machine this was written on, nproc above 32768 was already refused.
ULIMITS=(--ulimit nofile=1024:4096 --ulimit nproc=4096:4096)
RUN=(run --rm "${ULIMITS[@]}")
CONTAINERS=()
BUILD_CONTAINER=""

cleanup() {
    local status=$? name mount
    if ((status != 0)); then
        echo "==> image FAILED: ${CURRENT_STEP}" >&2
    fi
    for name in "${CONTAINERS[@]}"; do
        "${PODMAN[@]}" rm --force --time 0 "${name}" >/dev/null 2>&1 || true
    done
    if [[ -n "${BUILD_CONTAINER}" ]]; then
        "${BUILDAH[@]}" rm "${BUILD_CONTAINER}" >/dev/null 2>&1 || true
    fi
    "${PODMAN[@]}" rmi --all --force >/dev/null 2>&1 || true
    ip netns delete "${NETNS}" 2>/dev/null || true
    # Whatever is still mounted below WORK (deepest first), then WORK itself.
    while read -r mount; do
        umount "${mount}" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET | grep "^${WORK}/" | sort -r)
    rm -rf "${WORK}"
    return "${status}"
}
trap cleanup EXIT

# Runs one step. Not as `"$@" || fail`: that would switch set -e off inside the
# step's function, and a failed command in the middle of it would go unnoticed.
step() {
    CURRENT_STEP="$1"
    shift
    local start=${SECONDS}
    echo "==> ${CURRENT_STEP}"
    "$@"
    echo "    $((SECONDS - start)) s"
}

build_binary() {
    cargo build --release --locked --no-default-features --target "${RUST_TARGET}" --bin failover
}

build_image() {
    local binary="${TARGET_DIR}/${RUST_TARGET}/release/failover"
    BUILD_CONTAINER="$("${BUILDAH[@]}" from scratch)"
    "${BUILDAH[@]}" copy --chmod 0755 "${BUILD_CONTAINER}" "${binary}" "${IMAGE_BINARY}" >/dev/null
    "${BUILDAH[@]}" config --user "${IMAGE_USER}" --entrypoint "${IMAGE_ENTRYPOINT}" \
        --cmd "${IMAGE_CMD}" "${BUILD_CONTAINER}"
    mkdir -p "$(dirname "${ARCHIVE}")"
    rm -f "${ARCHIVE}"
    "${BUILDAH[@]}" commit --quiet --format oci "${BUILD_CONTAINER}" \
        "oci-archive:${ARCHIVE}:${IMAGE_NAME}:${VERSION}" >/dev/null
    "${BUILDAH[@]}" rm "${BUILD_CONTAINER}" >/dev/null
    BUILD_CONTAINER=""
    # Started from the archive, not from buildah's storage: what is pushed is what runs.
    "${PODMAN[@]}" load --quiet --input "${ARCHIVE}" >/dev/null
    "${PODMAN[@]}" image exists "${IMAGE_NAME}:${VERSION}"
}

check_version() {
    local out
    out="$("${PODMAN[@]}" "${RUN[@]}" --network none --read-only "${IMAGE_NAME}:${VERSION}" --version)"
    echo "    ${out}"
    [[ "${out}" == "failover ${VERSION}" ]]
}

# The image's configured user and the user a container of it really runs as. A
# long simulation keeps the process alive while podman reads its user; it is
# removed at once after.
check_non_root() {
    local configured name user
    configured="$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "${IMAGE_NAME}:${VERSION}")"
    [[ "${configured}" == "${IMAGE_USER}" ]] || {
        echo "    configured user ${configured}, want ${IMAGE_USER}" >&2
        return 1
    }
    name="${RUN_ID}-user"
    CONTAINERS+=("${name}")
    "${PODMAN[@]}" run --detach --name "${name}" "${ULIMITS[@]}" --network none \
        --read-only --cap-drop ALL "${IMAGE_NAME}:${VERSION}" \
        simulate --runs 1000000 --nodes 9 --threads 1 >/dev/null
    user=""
    local i
    for ((i = 0; i < WAIT_ATTEMPTS; i++)); do
        user="$("${PODMAN[@]}" top "${name}" huser 2>/dev/null | sed -n 2p | tr -d ' ' || true)"
        [[ -n "${user}" ]] && break
        sleep "${WAIT_STEP}"
    done
    "${PODMAN[@]}" rm --force --time 0 "${name}" >/dev/null
    echo "    configured ${configured}, running as host uid ${user:-?}"
    [[ "${user}" == "${IMAGE_USER%%:*}" ]]
}

# A one-member standalone cluster in a namespace with a veth pair (quorum none: a
# single member, which validation only accepts that way); it takes its only group
# and adds the VIP. The image, not the protocol, is under test here.
MEMBER_ADDR=10.213.0.1
VIP=10.213.0.100

start_agent() {
    ip netns add "${NETNS}"
    ip -n "${NETNS}" link set lo up
    ip -n "${NETNS}" link add fo-img0 type veth peer name fo-img1
    ip -n "${NETNS}" addr add "${MEMBER_ADDR}/24" dev fo-img0
    ip -n "${NETNS}" link set fo-img0 up
    ip -n "${NETNS}" link set fo-img1 up
    mkdir -m 0700 "${WORK}/etc"
    head -c 32 /dev/urandom | base64 >"${WORK}/etc/heartbeat.key"
    cat >"${WORK}/etc/cluster.yaml" <<EOF
apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: image}
spec:
  members:
    - {node: n1, address: ${MEMBER_ADDR}}
  quorum: none
  heartbeat: {interval: 100ms, deadAfter: 500ms}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: web}
spec:
  cluster: image
  resources:
    - name: vip
      virtualIP: {address: ${VIP}/24}
EOF
    local name="${RUN_ID}-agent"
    CONTAINERS+=("${name}")
    # As the agent DaemonSet: root in the container, NET_ADMIN and NET_RAW only.
    "${PODMAN[@]}" run --detach --name "${name}" "${ULIMITS[@]}" \
        --network "ns:/run/netns/${NETNS}" --read-only --user 0:0 \
        --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
        --volume "${WORK}/etc:/etc/failover:ro" \
        "${IMAGE_NAME}:${VERSION}" \
        agent --standalone /etc/failover/cluster.yaml --node n1 \
        --key-file /etc/failover/heartbeat.key >/dev/null
}

# Whether the namespace holds the VIP, on any interface (the agent puts it where its
# ARP/NDP design wants it, e.g. on lo as a /32 while it answers for it itself).
vip_present() {
    local addrs
    addrs="$(ip -n "${NETNS}" -o addr show)"
    [[ "${addrs}" == *" inet ${VIP}/"* ]]
}

check_vip_up() {
    local name="${RUN_ID}-agent"
    local i
    for ((i = 0; i < WAIT_ATTEMPTS; i++)); do
        if vip_present; then
            ip -n "${NETNS}" -o addr show | grep -F " ${VIP}/" | sed 's/^/    /'
            return 0
        fi
        if [[ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "${name}")" != true ]]; then
            echo "    the agent exited:" >&2
            break
        fi
        sleep "${WAIT_STEP}"
    done
    "${PODMAN[@]}" logs "${name}" 2>&1 | tail -n 20 | sed 's/^/    /' >&2
    ip -n "${NETNS}" addr show | sed 's/^/    /' >&2
    return 1
}

# A graceful stop gives the VIP up (SIGTERM: the agent takes its resources offline).
check_vip_released() {
    local name="${RUN_ID}-agent"
    "${PODMAN[@]}" stop --time 10 "${name}" >/dev/null
    ! vip_present
}

total_start=${SECONDS}
step "install missing tools" install_missing
step "static binary (cargo build --release --locked --no-default-features --target ${RUST_TARGET} --bin failover)" build_binary
step "image from scratch (${ARCHIVE})" build_image
step "--version in the image" check_version
step "default user is non-root, read-only root filesystem" check_non_root
step "agent in namespace ${NETNS} (NET_ADMIN, NET_RAW only, read-only root)" start_agent
step "agent brings its VIP ${VIP} up" check_vip_up
step "agent gives its VIP up on SIGTERM" check_vip_released
echo "==> image passed in $((SECONDS - total_start)) s: ${IMAGE_NAME}:${VERSION} (${ARCHIVE})"
