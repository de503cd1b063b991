//! The node agent: runs next to each member, exchanges heartbeats, decides with the
//! pure cores and drives the node's resources.
//!
//! Owns every piece of IO the agent does on its node, and its metrics. What it
//! shares with the operator (the configuration it runs and its hash, object names,
//! the node Lease report, the client) is `contract`'s: it never imports the
//! operator. Must never decide ownership itself: that is the membership and
//! placement cores' job.

mod announce;
pub mod kube;
pub mod metrics;
pub mod realtime;
pub mod runtime;
pub mod vip;

pub use runtime::{AgentError, AgentOptions, run};
