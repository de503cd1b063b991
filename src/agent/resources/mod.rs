//! The group's resources beyond its virtual IPs: health checks, supervised
//! processes and the transition hook.
//!
//! Owns the IO of running commands and probing services on this node. Must never
//! decide ownership, and must never run anything on the heartbeat path: every
//! check and command runs in a task of its own, bounded in time.

pub mod health;
pub mod hook;
pub mod process;
