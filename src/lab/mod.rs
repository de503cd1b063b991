//! Network-namespace lab: the test bench in which every cluster member is a Linux
//! network namespace on one bridge, and the tools that measure failover on it.
//!
//! Owns: building and tearing down a lab (`topology`), fault injection (`fault`),
//! the client-side probe and the node-side echo responder (`probe`, `echo`), the
//! sampler of which namespace holds a VIP (`sampler`), statistics and the benchmark
//! JSON (`stats`), the pluggable implementations under test (`impls`), bounded CPU
//! load (`load`), the scenario runner (`bench`), the failover-limit scenario
//! (`limit`), the soak (`soak`), the torture
//! (`torture`), the hostile flood (`hostile`) and the demo (`demo`). The CLI glue
//! lives in `cli`.
//!
//! Test and demo infrastructure, not part of what ships: the module exists only with
//! the cargo feature `lab` (on by default, so `cargo run -- demo` works; the
//! container image is built without it). Dependencies point one way: the lab uses
//! the agent's shipped code (its ARP codec and packet socket, `agent::vip::packet`
//! and `agent::vip::socket`, for the probe) and the cores; nothing outside `lab` but
//! the CLI names it, which the build without the feature proves.
//!
//! Must never: touch anything outside the namespaces it created (every name carries a
//! per-lab prefix and teardown removes only that prefix), run an unbounded loop, or be
//! used by the agent itself — the lab shells out to `ip`/`nft`/`kill`, the agent must not.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod echo;
pub mod fault;
pub mod hostile;
pub mod idle;
pub mod impls;
pub mod limit;
pub mod load;
pub mod probe;
pub mod sampler;
pub mod soak;
pub mod stats;
pub mod topology;
pub mod torture;

pub use topology::Lab;

/// Everything that can go wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A helper program (`ip`, `nft`, `kill`, an implementation under test) could not be started.
    #[error("cannot run `{cmd}`")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    /// A helper program ran and failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    /// Socket or file I/O.
    #[error("I/O error on {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A value given by the user or read from the system is not usable.
    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },
    /// A bounded wait ran out.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The probe's summary line could not be parsed.
    #[error("cannot parse probe output: {line}")]
    ProbeOutput {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// The implementation under test is not available on this machine.
    #[error("implementation {name} unavailable: {reason}")]
    Unavailable { name: String, reason: String },
}

impl LabError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}
