use std::time::Duration;

use super::{Decision, Hold, MAX_HOLD, Witness};
use crate::membership::DropReason;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// A witness past its restart hold for 1 s requests (one request of `z` seen).
fn started() -> Witness {
    let mut w = Witness::new();
    assert!(matches!(
        w.request(Duration::ZERO, "z", 1, 1, S),
        Ok(Decision::Restarting { left }) if left == S
    ));
    w
}

#[test]
fn free_vote_is_granted_and_held_for_the_duration() {
    let mut w = started();
    assert_eq!(
        w.request(2 * S, "a", 1, 1, S),
        Ok(Decision::Granted { previous: None })
    );
    assert_eq!(
        w.holder(2 * S),
        Some(&Hold {
            node: "a".into(),
            until: 3 * S
        })
    );
    assert_eq!(w.holder(3 * S), None);
}

#[test]
fn the_holder_renews() {
    let mut w = started();
    w.request(2 * S, "a", 1, 1, S).unwrap();
    assert_eq!(
        w.request(2 * S + 500 * MS, "a", 1, 2, S),
        Ok(Decision::Granted {
            previous: Some("a".into())
        })
    );
    assert_eq!(
        w.holder(3 * S + 400 * MS).map(|h| h.node.as_str()),
        Some("a")
    );
}

#[test]
fn another_node_is_refused_with_the_time_left() {
    let mut w = started();
    w.request(2 * S, "a", 1, 1, S).unwrap();
    assert_eq!(
        w.request(2 * S + 300 * MS, "b", 1, 1, S),
        Ok(Decision::Held {
            holder: "a".into(),
            left: 700 * MS
        })
    );
    assert_eq!(
        w.holder(2 * S + 300 * MS).map(|h| h.node.as_str()),
        Some("a")
    );
}

#[test]
fn an_expired_hold_goes_to_the_next_requester() {
    let mut w = started();
    w.request(2 * S, "a", 1, 1, S).unwrap();
    // Expiry is exclusive: at `until` the hold is over.
    assert_eq!(
        w.request(3 * S, "b", 1, 1, S),
        Ok(Decision::Granted { previous: None })
    );
    assert_eq!(
        w.request(3 * S + MS, "a", 1, 2, S),
        Ok(Decision::Held {
            holder: "b".into(),
            left: S - MS
        })
    );
}

#[test]
fn after_a_start_nothing_is_granted_for_the_longest_duration_asked() {
    let mut w = Witness::new();
    assert_eq!(
        w.request(200 * MS, "a", 1, 1, S),
        Ok(Decision::Restarting { left: 800 * MS })
    );
    // A longer request extends the hold: a grant before the restart may have been
    // that long.
    assert_eq!(
        w.request(900 * MS, "b", 1, 1, 2 * S),
        Ok(Decision::Restarting { left: 1100 * MS })
    );
    assert_eq!(
        w.request(2 * S, "a", 1, 2, S),
        Ok(Decision::Granted { previous: None })
    );
}

#[test]
fn replayed_or_reordered_requests_change_nothing() {
    let mut w = started();
    w.request(2 * S, "a", 5, 10, S).unwrap();
    // The same request again, an older one, one of an earlier incarnation.
    for (incarnation, seq) in [(5, 10), (5, 9), (4, 99)] {
        assert_eq!(
            w.request(4 * S, "a", incarnation, seq, S),
            Err(DropReason::Replayed)
        );
    }
    // The hold of "a" ran out and a replay did not renew it: "b" gets the vote.
    assert_eq!(
        w.request(4 * S, "b", 1, 1, S),
        Ok(Decision::Granted { previous: None })
    );
    // A restarted "a" (a new incarnation, its sequence starting again) is fresh.
    assert_eq!(
        w.request(4 * S, "a", 6, 1, S),
        Ok(Decision::Held {
            holder: "b".into(),
            left: S
        })
    );
}

#[test]
fn a_request_for_no_time_or_beyond_the_maximum_is_malformed() {
    let mut w = started();
    assert_eq!(
        w.request(2 * S, "a", 1, 1, Duration::ZERO),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        w.request(2 * S, "a", 1, 2, MAX_HOLD + MS),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        w.request(2 * S, "a", 1, 3, S),
        Ok(Decision::Granted { previous: None })
    );
}
