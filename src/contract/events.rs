//! Which Event an ownership change is, for the agent that takes a group and for the
//! operator that sees its status change: one mapping, so the agent's Event, the
//! operator's Event and the webhook notification name a change alike.
//!
//! Owns that mapping only; the Event reasons are `api::conditions::event`'s. It must
//! never publish anything.

use crate::api::conditions::event;
use crate::placement::Reason;

/// The Event for a group that got a new owner for `reason`: (warning, Event reason).
/// An automatic failover ([`Reason::is_failover`]) is a Warning, as a person should
/// look at why the owner was lost; a failback, a first placement and planned moves
/// are not. `None` (a code this version does not know) is a move.
pub fn takeover_event(reason: Option<Reason>) -> (bool, &'static str) {
    match reason {
        Some(r) if r.is_failover() => (true, event::FAILOVER),
        Some(Reason::Failback) => (false, event::FAILBACK),
        Some(Reason::Placed) => (false, event::PLACED),
        _ => (false, event::MOVED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failover_is_a_warning_and_nothing_else_is() {
        for reason in Reason::ALL {
            let (warning, name) = takeover_event(Some(reason));
            assert_eq!(warning, reason.is_failover(), "{reason:?}");
            assert_eq!(warning, name == event::FAILOVER, "{reason:?}");
        }
        assert_eq!(takeover_event(Some(Reason::OwnerLost)), (true, "Failover"));
        assert_eq!(
            takeover_event(Some(Reason::InterfaceDown)),
            (true, "Failover")
        );
        assert_eq!(takeover_event(Some(Reason::Failback)), (false, "Failback"));
        assert_eq!(takeover_event(Some(Reason::Placed)), (false, "Placed"));
        assert_eq!(takeover_event(Some(Reason::OwnerLeaving)), (false, "Moved"));
        assert_eq!(takeover_event(Some(Reason::ManualMove)), (false, "Moved"));
        assert_eq!(takeover_event(None), (false, "Moved"));
    }
}
