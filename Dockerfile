# syntax=docker/dockerfile:1
#
# One image for the operator and the agent: a static `failover` binary on distroless.
#
#   docker build -t REGISTRY/failover-operator:0.1.0 .
#   docker push REGISTRY/failover-operator:0.1.0
#
# tests/dockerfile.rs checks that the build command below stays the one CI proves
# (a static musl binary of the locked dependency tree, without the `lab` feature:
# the network-namespace lab and the demo are test and demo infrastructure, not part
# of what ships).

# --- builder: a static musl binary -------------------------------------------------
# The toolchain the project is developed with (Cargo.toml rust-version is the floor).
FROM rust:1.95-bookworm AS builder
# musl-tools: musl-gcc, for the C and assembly parts of dependencies (ring).
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY src src
# Cache mounts keep the registry and the target directory between builds; the
# binary is copied out of the cached directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --target x86_64-unknown-linux-musl --bin failover \
    && cp target/x86_64-unknown-linux-musl/release/failover /failover

# --- final: distroless static, non-root --------------------------------------------
# No shell, no package manager, no libc: the binary is static.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /failover /usr/local/bin/failover
# The operator runs as this user (65532, `nonroot`); the chart also sets
# runAsNonRoot. The agent DaemonSet the operator renders runs the same image as
# root (runAsUser: 0) with every capability dropped except NET_ADMIN (VIPs through
# netlink) and NET_RAW (gratuitous ARP / unsolicited NA): those come from the pod
# spec, never from the image, which carries no file capabilities.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/failover"]
CMD ["--help"]
