//! The node agent: runs next to each member, exchanges heartbeats, decides with the
//! pure cores and drives the node's resources.
//!
//! `runtime` is the event loop both modes share around the engine, `kube` the
//! Kubernetes mode, `resources` what the loop starts, renews and stops for a
//! group (its VIPs and their announcements), `vip` the netlink and ARP/NDP driver
//! under it, `timeline` the record of each takeover's phases.
//!
//! Owns every piece of IO the agent does on its node, and its metrics. What it
//! shares with the operator (the configuration it runs and its hash, object names,
//! the node Lease report, the client) is `contract`'s: it never imports the
//! operator. Must never decide ownership itself: that is the membership and
//! placement cores' job.

pub mod kube;
pub mod metrics;
pub mod realtime;
pub mod resources;
pub mod runtime;
pub mod timeline;
pub mod vip;

pub use runtime::{AgentError, AgentOptions, run};
