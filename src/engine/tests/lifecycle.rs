//! One engine through a group's life: self-fencing when its votes lapse, graceful
//! leave (its own and its owner's), and restart (a new incarnation).

use super::script::*;
use crate::engine::*;
use crate::placement::Reason;

/// `n1` of three runs the group at epoch 1: `n2` voted for it and echoed its claim.
fn owner() -> Script {
    let mut s = Script::started("n1", cluster(3, QuorumMode::Majority));
    s.hear(&["n2"]);
    let mut hb = s.from("n2");
    hb.grants.push(grant("n1", 1, 1));
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![1]);
    s.handle(Input::Online {
        group: GROUP.into(),
    });
    s
}

#[test]
fn an_owner_whose_voter_falls_silent_fences_a_margin_before_its_votes_lapse() {
    let mut s = owner();
    // n2's vote counts from the heartbeat of n1 it last echoed, for deadAfter less
    // the drift allowance; n1 stops the group a fence margin before that.
    let echoed = s.sent_at(s.echoed_by("n2"));
    let margin = EngineConfig::for_model(s.engine.model()).fence_margin;
    let fence_at = echoed + DEAD_AFTER.mul_f64(1.0 - DRIFT_ALLOWANCE) - margin;
    let out = s.run_until(fence_at - Duration::from_millis(1));
    assert!(stops(&out).is_empty(), "{out:?}");
    assert!(s.engine.quorate(), "n2 is not even dead yet");
    let out = s.run_until(fence_at);
    assert_eq!(stops(&out), vec![StopCause::Fence]);
    assert!(
        out.contains(&Output::Event(Event::Fenced {
            group: GROUP.into()
        })),
        "{out:?}"
    );
}

#[test]
fn an_owner_whose_voter_keeps_echoing_keeps_the_group() {
    let mut s = owner();
    let mut out = Vec::new();
    // n2 answers every heartbeat of n1, for many times deadAfter.
    for _ in 0..(5 * DEAD_AFTER.as_millis() / INTERVAL.as_millis()) {
        let next = s.now + INTERVAL;
        out.extend(s.run_until(next));
        let mut hb = s.from("n2");
        hb.grants.push(grant("n1", 1, 1));
        out.extend(s.deliver(hb));
    }
    assert!(stops(&out).is_empty(), "{out:?}");
    assert_eq!(s.engine.held_groups().collect::<Vec<_>>(), vec![(GROUP, 1)]);
}

#[test]
fn a_leaving_owner_releases_at_once_and_announces_it() {
    let mut s = owner();
    let out = s.handle(Input::Leave);
    assert_eq!(stops(&out), vec![StopCause::Release(Reason::OwnerLeaving)]);
    assert!(s.last_sent().leaving, "the leave is announced at once");
    assert!(
        !s.engine.ready_to_exit(s.now),
        "its resources are still stopping"
    );
    s.handle(Input::Offline {
        group: GROUP.into(),
    });
    assert_eq!(
        s.claim(),
        None,
        "the claim is withdrawn as soon as it is offline"
    );
    assert!(s.last_sent().leaving);
}

#[test]
fn the_successor_of_a_leaving_owner_starts_at_once() {
    let mut s = Script::started("n2", cluster(3, QuorumMode::Majority));
    let mut hb = s.from("n1");
    hb.claims.push(holding(1));
    s.deliver(hb);
    s.hear(&["n3"]);
    assert_eq!(
        s.vote(),
        Some(("n1".into(), 1, 2)),
        "n2 votes for the owner"
    );
    // n1 leaves: its last heartbeat has the flag and no claim. Nothing waits for a
    // timeout: n2 claims in the same instant, and starts on n3's vote.
    let mut hb = s.from("n1");
    hb.leaving = true;
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n2".into(), 1, 3)), "n2 votes for itself");
    assert!(s.claim().is_some(), "n2 claims the group at once");
    let mut hb = s.from("n3");
    hb.grants.push(grant("n2", 1, 3));
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![3]);
    assert!(
        s.log.iter().all(|(t, _)| *t == DEAD_AFTER),
        "no time passed: {:?}",
        s.log
    );
}

#[test]
fn a_new_incarnation_votes_for_nobody_for_dead_after() {
    let mut s = Script::booted("n3", cluster(3, QuorumMode::Majority), 2);
    s.tick();
    // n1 claims the group all along.
    for at in [Duration::ZERO, DEAD_AFTER / 2] {
        s.run_until(at);
        let mut hb = s.from("n1");
        hb.claims.push(claiming(0));
        s.deliver(hb);
        assert_eq!(s.vote(), None, "an earlier incarnation may have voted");
    }
    s.run_until(DEAD_AFTER - Duration::from_millis(1));
    assert_eq!(s.vote(), None);
    s.run_until(DEAD_AFTER);
    assert_eq!(s.vote(), Some(("n1".into(), 1, 1)));
}

#[test]
fn a_vote_for_a_restarted_claimant_is_given_again_under_a_new_epoch() {
    let mut s = Script::started("n3", cluster(3, QuorumMode::Majority));
    let mut hb = s.from("n1");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n1".into(), 1, 1)));
    // n1 restarted: its new incarnation claims again. The old one's vote is void.
    let mut hb = s.from("n1");
    hb.incarnation = 2;
    hb.seq = 1;
    hb.claims.push(claiming(0));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n1".into(), 2, 2)));
}

#[test]
fn a_restarted_owner_does_not_count_the_votes_given_to_its_earlier_incarnation() {
    let mut s = Script::booted("n1", cluster(3, QuorumMode::Majority), 2);
    s.now = DEAD_AFTER;
    s.tick();
    s.hear(&["n2"]);
    assert!(s.claim().is_some());
    // n2 still votes for incarnation 1 (it has not heard it die yet).
    let mut hb = s.from("n2");
    hb.grants.push(grant("n1", 1, 1));
    let out = s.deliver(hb);
    assert!(starts(&out).is_empty(), "{out:?}");
    let mut hb = s.from("n2");
    hb.grants.push(grant("n1", 2, 2));
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![2]);
}

#[test]
fn a_heartbeat_over_a_second_link_changes_nothing_and_one_link_keeps_the_votes() {
    let mut s = owner();
    let received = s.engine.membership().counters().received;
    let mut hb = s.from("n2");
    hb.grants.push(grant("n1", 1, 1));
    s.deliver_on(hb.clone(), 0);
    // Its copy over link 1: no event (no drop), not received twice.
    let out = s.deliver_on(hb, 1);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.engine.membership().counters().received, received + 1);
    assert!(s.engine.membership().counters().dropped.is_empty());
    // From now on only link 1 carries n2's heartbeats: its votes stay, n1 keeps
    // the group for several deadAfters.
    let until = s.now + 3 * DEAD_AFTER;
    while s.now < until {
        let out = s.run_until(s.now + INTERVAL);
        assert!(stops(&out).is_empty(), "{out:?}");
        let mut hb = s.from("n2");
        hb.grants.push(grant("n1", 1, 1));
        s.deliver_on(hb, 1);
    }
    assert!(s.engine.quorate());
}
