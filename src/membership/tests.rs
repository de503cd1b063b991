use super::*;
use crate::placement::{MemberModel, QuorumMode};

const MS: Duration = Duration::from_millis(1);

fn model(names: &[&str], quorum: QuorumMode) -> ClusterModel {
    ClusterModel {
        cluster: "default/c".into(),
        members: names
            .iter()
            .map(|n| MemberModel {
                name: n.to_string(),
                priority: 100,
                paused: false,
            })
            .collect(),
        quorum,
        interval: 200 * MS,
        dead_after: 1000 * MS,
        quarantine: None,
        groups: vec![],
    }
}

fn keys() -> Keyring {
    Keyring::new(vec![9; 32], None).unwrap()
}

fn node(me: &str, m: &ClusterModel, incarnation: u64) -> Membership {
    Membership::new(me, m, 1, keys(), incarnation)
}

/// `from` sends a heartbeat at `t` and `to` receives it at once.
fn send(from: &mut Membership, to: &mut Membership, t: Duration) -> Result<(), DropReason> {
    let bytes = from.heartbeat(t, vec![], vec![], vec![], vec![]).unwrap();
    to.receive(&bytes, 0, t).map(|_| ())
}

#[test]
fn alive_connected_and_expiry() {
    let m = model(&["a", "b", "c"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    send(&mut a, &mut b, Duration::ZERO).unwrap();
    assert!(b.alive("a", 10 * MS));
    // a does not report b yet: alive but not connected.
    assert!(!b.connected("a", 10 * MS));
    send(&mut b, &mut a, 20 * MS).unwrap();
    send(&mut a, &mut b, 40 * MS).unwrap();
    assert!(b.connected("a", 50 * MS));
    assert!(
        !b.alive("a", 1040 * MS),
        "dead exactly deadAfter after the last heartbeat"
    );
    assert!(b.alive("a", 1039 * MS));
}

#[test]
fn quorum_needs_a_connected_majority() {
    let m = model(&["a", "b", "c"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    assert!(!a.quorate(Duration::ZERO, false));
    send(&mut a, &mut b, Duration::ZERO).unwrap();
    send(&mut b, &mut a, MS).unwrap();
    assert!(a.quorate(2 * MS, false));
    // One-way: c hears a, a never hears c; c alone is not quorate.
    let mut c = node("c", &m, 1);
    send(&mut a, &mut c, 3 * MS).unwrap();
    assert!(!c.quorate(4 * MS, false));
    // The quorum lapses with the peer.
    assert!(!a.quorate(1001 * MS, false));
}

#[test]
fn witness_breaks_the_tie_of_two() {
    let m = model(&["a", "b"], QuorumMode::Witness);
    let a = node("a", &m, 1);
    assert!(!a.quorate(Duration::ZERO, false));
    assert!(a.witness_needed(Duration::ZERO));
    assert!(a.quorate(Duration::ZERO, true));
    let none = model(&["a", "b"], QuorumMode::None);
    assert!(node("a", &none, 1).quorate(Duration::ZERO, false));
}

#[test]
fn triad_secondary_alone_is_not_quorate() {
    // Primary dead, the secondary cannot reach the tertiary: no quorum, no takeover.
    let m = model(&["p", "s", "t"], QuorumMode::Majority);
    let s = node("s", &m, 1);
    assert!(!s.quorate(5000 * MS, false));
}

#[test]
fn confirmed_dead_needs_a_majority_of_reports() {
    let m = model(&["a", "b", "c"], QuorumMode::Majority);
    let (mut a, mut b, mut c) = (node("a", &m, 1), node("b", &m, 1), node("c", &m, 1));
    // All hear each other at t=0.
    for t in [0, 1, 2] {
        let t = t * MS;
        send(&mut a, &mut b, t).unwrap();
        send(&mut a, &mut c, t + MS / 2).unwrap();
        send(&mut b, &mut a, t).unwrap();
        send(&mut b, &mut c, t + MS / 2).unwrap();
        send(&mut c, &mut a, t).unwrap();
        send(&mut c, &mut b, t + MS / 2).unwrap();
    }
    // a dies. At 1100 ms b sees a dead, but b has no fresh report from c: b alone
    // is one of the two reports a majority of three needs.
    assert!(!b.alive("a", 1100 * MS));
    assert!(!b.confirmed_dead("a", 1100 * MS));
    // c reports again after a died in its view too.
    send(&mut c, &mut b, 1100 * MS).unwrap();
    assert!(b.confirmed_dead("a", 1100 * MS));
}

#[test]
fn replays_and_strangers_are_dropped_and_counted() {
    let m = model(&["a", "b"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 5), node("b", &m, 1));
    let first = a
        .heartbeat(Duration::ZERO, vec![], vec![], vec![], vec![])
        .unwrap();
    let second = a.heartbeat(MS, vec![], vec![], vec![], vec![]).unwrap();
    assert!(b.receive(&second, 0, 2 * MS).is_ok());
    assert_eq!(
        b.receive(&first, 0, 3 * MS).unwrap_err(),
        DropReason::Replayed
    );
    assert_eq!(
        b.receive(&second, 0, 3 * MS).unwrap_err(),
        DropReason::Replayed
    );
    // An older incarnation of a (before a restart) is a replay too.
    let mut old = node("a", &m, 4);
    let stale = old
        .heartbeat(4 * MS, vec![], vec![], vec![], vec![])
        .unwrap();
    assert_eq!(
        b.receive(&stale, 0, 5 * MS).unwrap_err(),
        DropReason::Replayed
    );
    // A restart (higher incarnation) restarts the sequence.
    let mut restarted = node("a", &m, 6);
    let fresh = restarted
        .heartbeat(6 * MS, vec![], vec![], vec![], vec![])
        .unwrap();
    assert!(b.receive(&fresh, 0, 7 * MS).is_ok());
    // Not a member; itself.
    let other = model(&["a", "b", "x"], QuorumMode::Majority);
    let mut x = node("x", &other, 1);
    let from_x = x
        .heartbeat(Duration::ZERO, vec![], vec![], vec![], vec![])
        .unwrap();
    assert_eq!(
        b.receive(&from_x, 0, 8 * MS).unwrap_err(),
        DropReason::UnknownSender
    );
    let own = b.heartbeat(9 * MS, vec![], vec![], vec![], vec![]).unwrap();
    assert_eq!(
        b.receive(&own, 0, 9 * MS).unwrap_err(),
        DropReason::FromSelf
    );
    assert_eq!(
        b.receive(b"garbage", 0, 9 * MS).unwrap_err(),
        DropReason::Malformed
    );
    let c = b.counters();
    assert_eq!(c.received, 2);
    assert_eq!(c.dropped[&DropReason::Replayed], 3);
    assert_eq!(c.dropped[&DropReason::UnknownSender], 1);
    assert_eq!(c.dropped[&DropReason::FromSelf], 1);
    assert_eq!(c.dropped[&DropReason::Malformed], 1);
}

#[test]
fn alive_since_survives_heartbeats_and_resets_after_death() {
    let m = model(&["a", "b"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    send(&mut a, &mut b, 100 * MS).unwrap();
    send(&mut a, &mut b, 300 * MS).unwrap();
    assert_eq!(b.peer("a").unwrap().alive_since, 100 * MS);
    send(&mut a, &mut b, 5000 * MS).unwrap();
    assert_eq!(b.peer("a").unwrap().alive_since, 5000 * MS);
}

#[test]
fn sent_times_are_remembered_for_echoes() {
    let m = model(&["a", "b"], QuorumMode::Majority);
    let mut a = node("a", &m, 1);
    for i in 0..10u64 {
        a.heartbeat(
            Duration::from_millis(i * 10),
            vec![],
            vec![],
            vec![],
            vec![],
        )
        .unwrap();
    }
    assert_eq!(a.sent_at(1), Some(Duration::ZERO));
    assert_eq!(a.sent_at(10), Some(90 * MS));
    assert_eq!(a.sent_at(11), None);
    assert_eq!(a.sent_at(0), None);
}

#[test]
fn reconfigure_forgets_removed_members() {
    let m = model(&["a", "b", "c"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    send(&mut a, &mut b, Duration::ZERO).unwrap();
    b.reconfigure(&model(&["b", "c"], QuorumMode::Majority), 2);
    assert!(b.peer("a").is_none());
    assert_eq!(b.voters(), ["b", "c"]);
}

fn beat(from: &mut Membership, t: Duration) -> Vec<u8> {
    from.heartbeat(t, vec![], vec![], vec![], vec![]).unwrap()
}

#[test]
fn a_heartbeat_over_two_links_counts_once_and_shows_both_links() {
    let m = model(&["a", "b"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    let first = beat(&mut a, Duration::ZERO);
    assert!(matches!(b.receive(&first, 0, MS), Ok(Received::Fresh(_))));
    assert!(matches!(
        b.receive(&first, 1, 2 * MS),
        Ok(Received::Duplicate)
    ));
    // The same copy again on either link is a replay there.
    for link in [0, 1] {
        assert_eq!(
            b.receive(&first, link, 3 * MS).unwrap_err(),
            DropReason::Replayed
        );
    }
    // A slower link: the next heartbeat over link 1 first, then the earlier copy
    // of the one after it over link 0 arrives late: still that link's news.
    let second = beat(&mut a, 10 * MS);
    let third = beat(&mut a, 20 * MS);
    assert!(matches!(
        b.receive(&third, 1, 21 * MS),
        Ok(Received::Fresh(_))
    ));
    assert!(matches!(
        b.receive(&second, 0, 22 * MS),
        Ok(Received::Duplicate)
    ));
    assert!(matches!(
        b.receive(&third, 0, 23 * MS),
        Ok(Received::Duplicate)
    ));
    assert_eq!(
        b.receive(&second, 1, 24 * MS).unwrap_err(),
        DropReason::Replayed
    );
    let c = b.counters();
    assert_eq!(c.received, 2, "a duplicate is not received twice");
    assert_eq!(c.dropped[&DropReason::Replayed], 3);
    assert_eq!(b.peer("a").unwrap().last.seq, 3);
    assert_eq!(b.peer("a").unwrap().heard_at, 21 * MS);
    for link in [0, 1] {
        assert_eq!(b.link_state("a", link, 30 * MS), LinkState::Up);
    }
}

#[test]
fn a_member_is_alive_while_any_link_carries_its_heartbeats() {
    let m = model(&["a", "b"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    // Both links carry the first heartbeats; from 1 s on only link 1 does.
    let mut t = Duration::ZERO;
    while t < 3000 * MS {
        let bytes = beat(&mut a, t);
        if t < 1000 * MS {
            b.receive(&bytes, 0, t).unwrap();
        }
        b.receive(&bytes, 1, t).unwrap();
        assert!(b.alive("a", t));
        // Link 0 is up until deadAfter after the last heartbeat it carried (800 ms).
        let want = if t < 1800 * MS {
            LinkState::Up
        } else {
            LinkState::Down
        };
        assert_eq!(b.link_state("a", 0, t), want, "at {t:?}");
        t += 200 * MS;
    }
    let now = 2900 * MS;
    assert!(b.alive("a", now));
    assert_eq!(b.link_state("a", 0, now), LinkState::Down);
    assert_eq!(b.link_state("a", 1, now), LinkState::Up);
    // Link 0 carries heartbeats again.
    let bytes = beat(&mut a, now);
    b.receive(&bytes, 0, now).unwrap();
    assert_eq!(b.link_state("a", 0, now), LinkState::Up);
    // Both links silent: the member dies, and its links say nothing more.
    assert!(!b.alive("a", now + 1000 * MS));
    for link in [0, 1, 2] {
        assert_eq!(b.link_state("a", link, now + 1000 * MS), LinkState::Unknown);
    }
}

#[test]
fn a_link_that_never_carried_a_heartbeat_is_down_once_the_member_has_been_alive_for_dead_after() {
    let m = model(&["a", "b"], QuorumMode::Majority);
    let (mut a, mut b) = (node("a", &m, 1), node("b", &m, 1));
    assert_eq!(b.link_state("a", 1, Duration::ZERO), LinkState::Unknown);
    let mut t = Duration::ZERO;
    while t <= 1200 * MS {
        let bytes = beat(&mut a, t);
        b.receive(&bytes, 0, t).unwrap();
        // Just alive: link 1 may not have carried its copy yet.
        let want = if t < 1000 * MS {
            LinkState::Unknown
        } else {
            LinkState::Down
        };
        assert_eq!(b.link_state("a", 1, t), want, "at {t:?}");
        t += 200 * MS;
    }
}
