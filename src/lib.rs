//! failover-operator: a Kubernetes operator and node agent that make a set of nodes
//! a failover cluster (see DESIGN.md in the shared design notes).
//!
//! The crate is a fat library behind a thin `failover` binary. Unsafe code is denied
//! everywhere; the one module that opens raw packet sockets allows it locally.
//!
//! `lab` (network namespaces, probes, faults, benchmarks, torture, soak, the demo) is
//! test and demo infrastructure: it exists only with the cargo feature `lab` (on by
//! default), which the shipped image leaves out, so the compiler checks that the
//! agent, the operator and the cores never use it.
#![deny(unsafe_code)]

pub mod agent;
pub mod api;
pub mod cli;
pub mod contract;
pub mod engine;
pub mod keyfile;
#[cfg(feature = "lab")]
pub mod lab;
pub mod membership;
pub mod operator;
pub mod placement;
pub mod plugin;
pub mod sim;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod witness;
