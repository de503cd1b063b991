//! Votes, echoes and the ledger's answers, one engine at a time: as a voter (whom it
//! grants its vote, under which epoch, and when it refuses) and as a claimant (which
//! votes it counts, how many it needs, which epoch its take gets).

use super::script::*;
use crate::engine::*;
use crate::membership::Heartbeat;

/// The engine `n1` of a `members`-member majority cluster, claiming the group: it
/// heard `n2` … up to a majority, each of whom echoed its last heartbeat.
fn claimant(members: usize) -> Script {
    let mut s = Script::started("n1", cluster(members, QuorumMode::Majority));
    let others: Vec<String> = (2..=members / 2 + 1).map(|i| format!("n{i}")).collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    s.hear(&others);
    assert!(s.engine.quorate(), "a majority hears n1");
    assert_eq!(s.claim(), Some(claiming(1)), "n1 asks for the group");
    s
}

/// `peer`'s heartbeat that votes for `n1` (incarnation 1) under `epoch`.
fn vote_for_n1(s: &Script, peer: &str, epoch: u64) -> Heartbeat {
    let mut hb = s.from(peer);
    hb.grants.push(grant("n1", 1, epoch));
    hb
}

#[test]
fn a_voter_grants_its_vote_to_the_claimant() {
    let mut s = Script::started("n3", cluster(3, QuorumMode::Majority));
    let mut hb = s.from("n1");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n1".into(), 1, 1)));
}

#[test]
fn a_voter_refuses_a_second_claimant_while_its_vote_is_held() {
    let mut s = Script::started("n3", cluster(3, QuorumMode::Majority));
    let mut hb = s.from("n2");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n2".into(), 1, 1)));
    // n1 ranks higher, but the vote stays where it is while n2 claims.
    let mut hb = s.from("n1");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    let mut hb = s.from("n2");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n2".into(), 1, 1)));
}

#[test]
fn a_vote_moves_only_when_its_holder_gives_the_claim_up_and_then_under_a_new_epoch() {
    let mut s = Script::started("n3", cluster(3, QuorumMode::Majority));
    let mut hb = s.from("n2");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    let mut hb = s.from("n1");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n2".into(), 1, 1)));
    // n2 gives the claim up: the vote is free, and goes to n1 under epoch 2, never
    // under the epoch that n2 had.
    s.hear(&["n2"]);
    assert_eq!(s.vote(), Some(("n1".into(), 1, 2)));
    // Every heartbeat carried one vote for the group at most.
    assert!(
        s.sent
            .iter()
            .all(|(_, hb)| hb.grants.iter().filter(|g| g.group == GROUP).count() <= 1)
    );
}

#[test]
fn a_voter_answers_with_an_epoch_above_every_epoch_it_knows() {
    let mut s = Script::started("n3", cluster(3, QuorumMode::Majority));
    // n2 holds the group at epoch 4 (taken while n3 was away).
    let mut hb = s.from("n2");
    hb.claims.push(holding(4));
    s.deliver(hb);
    assert_eq!(s.vote(), Some(("n2".into(), 1, 5)));
}

#[test]
fn a_silent_claimant_loses_the_vote_after_dead_after() {
    let mut s = Script::started("n3", cluster(3, QuorumMode::Majority));
    let mut hb = s.from("n1");
    hb.claims.push(claiming(0));
    s.deliver(hb);
    let heard = s.now;
    s.run_until(heard + DEAD_AFTER - Duration::from_millis(1));
    assert_eq!(s.vote(), Some(("n1".into(), 1, 1)));
    s.run_until(heard + DEAD_AFTER);
    assert_eq!(s.vote(), None);
}

#[test]
fn three_members_start_with_two_votes_and_not_with_one() {
    let mut s = claimant(3);
    // n2 hears the claim but votes for nobody: n1's own vote is one of three.
    let out = s.hear(&["n2"]);
    assert!(starts(&out).is_empty(), "{out:?}");
    let hb = vote_for_n1(&s, "n2", 1);
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![1]);
}

#[test]
fn five_members_start_with_three_votes_and_not_with_two() {
    let mut s = claimant(5);
    let hb = vote_for_n1(&s, "n2", 1);
    let out = s.deliver(hb);
    assert!(starts(&out).is_empty(), "two of five: {out:?}");
    let hb = vote_for_n1(&s, "n3", 1);
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![1], "three of five");
}

#[test]
fn a_vote_counts_only_once_its_voter_echoes_the_claim() {
    let mut s = claimant(3);
    // The claim went out in the last heartbeat; n2's vote echoes the one before it,
    // sent before n1 claimed: n2 may not have seen the claim's sequence yet.
    let claim_seq = s.last_sent().seq;
    let mut hb = vote_for_n1(&s, "n2", 1);
    hb.peers[0].last_seq = claim_seq - 1;
    let out = s.deliver(hb);
    assert!(starts(&out).is_empty(), "{out:?}");
    let mut hb = vote_for_n1(&s, "n2", 1);
    hb.peers[0].last_seq = claim_seq;
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![1]);
}

#[test]
fn a_vote_counts_only_for_this_incarnation_of_the_claimant() {
    let mut s = claimant(3);
    // A vote for an earlier incarnation of n1 (it restarted since).
    let mut hb = s.from("n2");
    hb.grants.push(grant("n1", 0, 1));
    let out = s.deliver(hb);
    assert!(starts(&out).is_empty(), "{out:?}");
    // An echo of an earlier incarnation's heartbeat does not count either.
    let mut hb = vote_for_n1(&s, "n2", 1);
    hb.peers[0].incarnation = 0;
    let out = s.deliver(hb);
    assert!(starts(&out).is_empty(), "{out:?}");
}

#[test]
fn the_take_gets_the_highest_epoch_of_the_majority_that_voted() {
    let mut s = claimant(3);
    // n2's vote carries epoch 7 (it knew of 6 takes); n1's own vote carries 1.
    let hb = vote_for_n1(&s, "n2", 7);
    let out = s.deliver(hb);
    assert_eq!(starts(&out), vec![7]);
    assert_eq!(s.engine.held_groups().collect::<Vec<_>>(), vec![(GROUP, 7)]);
}

#[test]
fn with_a_witness_one_of_two_members_starts_with_the_witness_lease() {
    let mut s = Script::started("n1", cluster(2, QuorumMode::Witness));
    // n2 is silent: n1 asks for the witness.
    assert!(
        s.log
            .iter()
            .any(|(_, o)| matches!(o, Output::WitnessRequest { .. })),
        "{:?}",
        s.log
    );
    assert!(!s.engine.quorate());
    // Refused: another node holds it for a while.
    let out = s.handle(Input::Witness {
        witness: WitnessRef::Lease,
        held_until: None,
        other_until: Some(s.now + DEAD_AFTER),
    });
    assert!(starts(&out).is_empty(), "{out:?}");
    assert!(!s.engine.quorate());
    assert_eq!(s.claim(), None);
    // Held: n1's own vote and the witness are two of three.
    let until = s.now + 2 * DEAD_AFTER;
    s.now += DEAD_AFTER;
    // The refusal said until when: n1 asks again then.
    let out = s.tick();
    assert!(
        out.contains(&Output::WitnessRequest {
            witness: WitnessRef::Lease
        }),
        "{out:?}"
    );
    s.handle(Input::Witness {
        witness: WitnessRef::Lease,
        held_until: Some(until),
        other_until: None,
    });
    assert!(s.engine.quorate());
    assert_eq!(s.claim(), Some(claiming(1)));
    let out = s.tick();
    assert_eq!(starts(&out), vec![1]);
}

/// n1 ran alone on the witness; n2 comes back from a restart and votes only after
/// its restart hold. Until n2 could have voted, n1 keeps renewing the witness: had it
/// stopped when n2 was first heard, the witness's hold would lapse before n2's votes
/// arrive and n1 would fence the group it runs (a simulator seed of a two-node pair
/// did exactly that).
#[test]
fn a_member_keeps_the_witness_fresh_while_its_returning_peer_cannot_vote_yet() {
    let mut s = Script::started("n1", cluster(2, QuorumMode::Witness));
    let grant = |s: &mut Script| {
        let held_until = Some(s.now + DEAD_AFTER);
        s.handle(Input::Witness {
            witness: WitnessRef::Lease,
            held_until,
            other_until: None,
        })
    };
    grant(&mut s);
    let out = s.tick();
    assert_eq!(starts(&out), vec![1], "{out:?}");

    // n2 is heard every interval from now on and grants nothing (restart hold).
    let back = s.now;
    let mut renewals_after_back = 0;
    while s.now < back + DEAD_AFTER + INTERVAL {
        s.now += INTERVAL;
        let mut out = s.hear(&["n2"]);
        out.extend(s.tick());
        if out
            .iter()
            .any(|o| matches!(o, Output::WitnessRequest { .. }))
        {
            renewals_after_back += 1;
            grant(&mut s);
        }
    }
    assert!(
        renewals_after_back >= 3,
        "n1 renewed the witness {renewals_after_back} times while n2 could not vote"
    );
    assert!(
        !s.log
            .iter()
            .any(|(_, o)| matches!(o, Output::Event(Event::Fenced { .. }))),
        "{:?}",
        s.log
    );
}

/// A change of witness while n1 runs (here from the Lease to `failover witness`, a
/// Kubernetes configuration that gains `spec.witness`): until n2 is heard on the new
/// configuration, a witness vote needs the old and the new witness; then the new
/// one alone.
#[test]
fn during_a_change_of_witness_a_vote_needs_the_old_and_the_new_witness() {
    let mut s = Script::started("n1", cluster(2, QuorumMode::Witness));
    let process = WitnessRef::Process(std::net::SocketAddr::from(([192, 0, 2, 1], 9000)));
    let requests = |out: &[Output]| -> Vec<WitnessRef> {
        out.iter()
            .filter_map(|o| match o {
                Output::WitnessRequest { witness } => Some(*witness),
                _ => None,
            })
            .collect()
    };
    // n2 is silent: n1 asked the Lease at its start.
    assert_eq!(
        requests(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>()),
        vec![WitnessRef::Lease]
    );
    let model = Arc::new(s.engine.model().clone());
    let out = s.handle(Input::Configure {
        model,
        hash: 2,
        witness: Some(process),
    });
    assert!(
        out.contains(&Output::Event(Event::WitnessChangeBegan {
            needed: vec![WitnessRef::Lease, process]
        })),
        "{out:?}"
    );
    // The Lease's grant to the request made before the change is one witness of
    // the two now needed: no vote, and both are asked at once.
    let until = s.now + 2 * DEAD_AFTER;
    let granted = |witness| Input::Witness {
        witness,
        held_until: Some(until),
        other_until: None,
    };
    let out = s.handle(granted(WitnessRef::Lease));
    assert!(!s.engine.quorate());
    assert_eq!(requests(&out), vec![WitnessRef::Lease, process]);
    // The new witness refuses (n2 holds it): still no vote.
    s.handle(granted(WitnessRef::Lease));
    s.handle(Input::Witness {
        witness: process,
        held_until: None,
        other_until: Some(s.now + DEAD_AFTER / 2),
    });
    assert!(!s.engine.quorate());
    // Both grant: the vote counts.
    s.now += DEAD_AFTER / 2;
    let out = s.tick();
    assert_eq!(requests(&out), vec![WitnessRef::Lease, process]);
    s.handle(granted(process));
    assert!(!s.engine.quorate(), "one answer of two decides nothing");
    s.handle(granted(WitnessRef::Lease));
    assert!(s.engine.quorate());
    // n2 heard on the old configuration: the change goes on.
    s.deliver(s.from("n2"));
    assert_eq!(s.engine.witnesses().needed(), &[WitnessRef::Lease, process]);
    // n2 heard on the new one: only the new witness counts from now on.
    let mut hb = s.from("n2");
    hb.config_hash = 2;
    let out = s.deliver(hb);
    assert!(
        out.contains(&Output::Event(Event::WitnessChangeDone {
            dropped: vec![WitnessRef::Lease]
        })),
        "{out:?}"
    );
    assert_eq!(s.engine.witnesses().needed(), &[process]);
    assert_eq!(
        s.engine.witnesses().held_until(),
        Some(until),
        "the joint grant covers the new witness"
    );
}
