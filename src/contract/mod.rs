//! The contract between the operator and the agent: what both sides must agree on
//! and what both use, so that neither imports the other (DESIGN.md section 6).
//!
//! - [`names`]: the names, labels, annotations and data keys of the objects they share;
//! - [`model`]: the CRDs converted into what an agent runs (the engine's
//!   `ClusterModel`, VIPs, addresses) and the config hash;
//! - [`plan`]: a group's resources in the order they start (and, reversed, stop);
//! - [`render`] and [`source`]: the ClusterConfig ConfigMap as the operator writes it
//!   and as the agent reads it, with the heartbeat Secret;
//! - [`report`]: the node Lease report the agent writes and the operator reads;
//! - [`events`]: which Event an ownership change is, for both sides;
//! - [`client`]: the Kubernetes client both start with;
//! - [`file`]: the atomic write of a standalone configuration file (the agent on a
//!   push, `failover ctl` after a write verb).
//!
//! Depends on `api` and the cores only. It must never import the operator or the
//! agent, never watch or write an object itself, and never decide ownership.

pub mod client;
pub mod events;
pub mod file;
pub mod model;
pub mod names;
pub mod plan;
pub mod render;
pub mod report;
pub mod source;
