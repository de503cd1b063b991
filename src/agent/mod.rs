//! The node agent: runs next to each member, exchanges heartbeats, decides with the
//! pure cores and drives the node's resources.
//!
//! Owns every piece of IO the agent does on its node. Must never decide ownership
//! itself: that is the membership and placement cores' job.

mod announce;
pub mod config;
pub mod kube;
pub mod realtime;
pub mod resources;
pub mod runtime;
pub mod vip;

pub use config::{AgentConfig, ConfigError};
pub use runtime::{AgentError, AgentOptions, run};
