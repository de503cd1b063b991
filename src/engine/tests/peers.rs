//! Input → output tests of one engine among peers, in the style of raft-rs's
//! tests: a few engines exchange their heartbeats over a lossless network with a
//! delay of one step (1 ms) that a test can cut link by link, resources start and
//! stop at once, and each
//! test asserts the outputs that matter for the path it covers.

use crate::engine::*;
use crate::membership::Keyring;
use crate::placement::{
    FailbackPolicy, FailoverLimit, GroupModel, MemberModel, QuarantinePolicy, UnableReason,
};

const INTERVAL: Duration = Duration::from_millis(10);
const DEAD_AFTER: Duration = Duration::from_millis(30);
/// Simulated time advances in steps of this much.
const STEP: Duration = Duration::from_millis(1);

/// Three members `n1` (priority 200), `n2` (100), `n3` (50); one group `vip` with no
/// preferred owners (so the order is n1, n2, n3) that never fails back; flap
/// quarantine after one failure.
fn model() -> ClusterModel {
    ClusterModel {
        cluster: "test/cluster".into(),
        members: [("n1", 200), ("n2", 100), ("n3", 50)]
            .into_iter()
            .map(|(name, priority)| MemberModel {
                name: name.into(),
                priority,
                paused: false,
            })
            .collect(),
        quorum: QuorumMode::Majority,
        interval: INTERVAL,
        dead_after: DEAD_AFTER,
        quarantine: Some(QuarantinePolicy {
            failures: 1,
            period: Duration::from_secs(3600),
            duration: Duration::from_secs(7200),
        }),
        groups: vec![GroupModel {
            name: "vip".into(),
            preferred_owners: Vec::new(),
            failback: FailbackPolicy::Never,
            failover_limit: None,
            owner: None,
        }],
    }
}

/// Engines on a network that delivers in the next step; `log[i]` holds every output
/// of engine `i` but its heartbeats, with the time it came out.
struct Net {
    engines: Vec<Engine>,
    /// Engines that crashed: they neither run nor receive.
    dead: BTreeSet<usize>,
    /// Links that lose everything: (from, to).
    cut: BTreeSet<(usize, usize)>,
    now: Duration,
    /// Datagrams on the wire: (to, bytes), delivered at the next step.
    in_flight: Vec<(usize, Vec<u8>)>,
    log: Vec<Vec<(Duration, Output)>>,
}

fn keys() -> Keyring {
    Keyring::new(b"engine tests key, 32 bytes long!".to_vec(), None)
        .unwrap_or_else(|_| Keyring::insecure_public())
}

/// Engine `i` (0-based) of `model`, started at `now` as its `incarnation`th run.
fn engine(i: usize, model: &Arc<ClusterModel>, incarnation: u64, now: Duration) -> Engine {
    Engine::new(
        &format!("n{}", i + 1),
        model.clone(),
        1,
        None,
        EngineConfig::for_model(model),
        keys(),
        incarnation,
        now,
        Timestamp::UNIX_EPOCH,
    )
}

impl Net {
    fn new() -> Self {
        Self::of(model())
    }

    fn of(model: ClusterModel) -> Self {
        let model = Arc::new(model);
        let engines = (0..3)
            .map(|i| engine(i, &model, 1, Duration::ZERO))
            .collect();
        Net {
            engines,
            dead: BTreeSet::new(),
            cut: BTreeSet::new(),
            now: Duration::ZERO,
            in_flight: Vec::new(),
            log: vec![Vec::new(); 3],
        }
    }

    /// Feeds `input` to engine `i` and carries out what comes out: heartbeats go on
    /// the wire (unless cut), resources start and stop at once.
    fn feed(&mut self, i: usize, input: Input<'_>) {
        let mut pending = vec![(i, owned(input))];
        // Bounded: an engine's outputs lead to at most one more input each.
        let mut budget = 10_000;
        while let Some((n, input)) = pending.pop() {
            budget -= 1;
            assert!(budget > 0, "the engines never settle");
            if self.dead.contains(&n) {
                continue;
            }
            let now = self.now;
            match input {
                Owned::Datagram { bytes, link } => self.engines[n].handle(
                    now,
                    Input::Datagram {
                        bytes: &bytes,
                        link,
                    },
                ),
                Owned::Other(other) => self.engines[n].handle(now, other),
            }
            while let Some(output) = self.engines[n].poll_output() {
                match &output {
                    Output::Broadcast(bytes) => {
                        for to in (0..self.engines.len()).filter(|&to| to != n) {
                            if !self.cut.contains(&(n, to)) {
                                self.in_flight.push((to, bytes.clone()));
                            }
                        }
                        continue;
                    }
                    Output::Start { group, .. } => pending.push((
                        n,
                        Owned::Other(Input::Online {
                            group: group.clone(),
                        }),
                    )),
                    Output::Stop { group, .. } => pending.push((
                        n,
                        Owned::Other(Input::Offline {
                            group: group.clone(),
                        }),
                    )),
                    _ => {}
                }
                self.log[n].push((now, output));
            }
        }
    }

    /// Advances the time to `until`: each step delivers what is on the wire, then
    /// wakes every live engine whose timer is due.
    fn run_until(&mut self, until: Duration) {
        while self.now < until {
            self.now += STEP;
            for (to, bytes) in std::mem::take(&mut self.in_flight) {
                self.feed(
                    to,
                    Input::Datagram {
                        bytes: &bytes,
                        link: 0,
                    },
                );
            }
            for i in 0..self.engines.len() {
                if !self.dead.contains(&i) && self.engines[i].poll_timeout() <= self.now {
                    self.feed(i, Input::Tick);
                }
            }
        }
    }

    /// Cuts (or heals) both directions between `a` and `b`.
    fn cut_between(&mut self, a: usize, b: usize, cut: bool) {
        for link in [(a, b), (b, a)] {
            if cut {
                self.cut.insert(link);
            } else {
                self.cut.remove(&link);
            }
        }
    }

    /// Times engine `i` started `group`, from `since` on.
    fn starts(&self, i: usize, since: Duration) -> Vec<Duration> {
        self.log[i]
            .iter()
            .filter(|(t, o)| *t >= since && matches!(o, Output::Start { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn claimed(&self, i: usize, since: Duration) -> bool {
        self.log[i]
            .iter()
            .any(|(t, o)| *t >= since && matches!(o, Output::Event(Event::Claimed { .. })))
    }
}

/// An input the network holds until delivery (a datagram owns its bytes).
enum Owned {
    Datagram { bytes: Vec<u8>, link: usize },
    Other(Input<'static>),
}

fn owned(input: Input<'_>) -> Owned {
    match input {
        Input::Datagram { bytes, link } => Owned::Datagram {
            bytes: bytes.to_vec(),
            link,
        },
        Input::Tick => Owned::Other(Input::Tick),
        Input::Online { group } => Owned::Other(Input::Online { group }),
        Input::Offline { group } => Owned::Other(Input::Offline { group }),
        Input::Unable { groups } => Owned::Other(Input::Unable { groups }),
        Input::ClearFailures { group, token } => {
            Owned::Other(Input::ClearFailures { group, token })
        }
        Input::Configure {
            model,
            hash,
            witness,
        } => Owned::Other(Input::Configure {
            model,
            hash,
            witness,
        }),
        other => panic!("the test network does not carry {other:?}"),
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn the_first_member_in_order_takes_the_group_and_the_others_do_not() {
    let mut net = Net::new();
    net.run_until(ms(200));
    assert_eq!(net.starts(0, Duration::ZERO).len(), 1, "{:?}", net.log[0]);
    assert!(net.starts(1, Duration::ZERO).is_empty());
    assert!(net.starts(2, Duration::ZERO).is_empty());
}

/// The stall of issue 10: placement differs between the survivors for long (each
/// quarantined the other after seeing it flap, and never itself), both claim the
/// group at once, and each keeps its own vote. Before the fix, no one had a majority
/// until the contest back-off, deadAfter + 2 intervals later and then some; now the
/// lower-ranked claimant steps back at once and the higher-ranked one wins within a
/// round trip of detecting the owner's death.
#[test]
fn a_lower_ranked_claimant_steps_back_at_once_for_a_higher_ranked_one() {
    let mut net = Net::new();
    net.run_until(ms(200));
    assert_eq!(net.starts(0, Duration::ZERO).len(), 1, "n1 owns the group");
    // n2 and n3 lose each other for longer than deadAfter: each records one failure
    // of the other and quarantines it (n1 keeps both quorate).
    net.cut_between(1, 2, true);
    net.run_until(ms(260));
    net.cut_between(1, 2, false);
    net.run_until(ms(400));
    let view = |i: usize| net.engines[i].view(net.now);
    assert!(view(1).members["n3"].alive && view(2).members["n2"].alive);
    // The owner dies.
    let killed = net.now;
    net.dead.insert(0);
    net.run_until(killed + ms(200));
    // Both survivors took part in the contest...
    assert!(net.claimed(1, killed), "{:?}", net.log[1]);
    assert!(net.claimed(2, killed), "{:?}", net.log[2]);
    // ...and the higher-ranked one won it within detection plus two intervals.
    let starts = net.starts(1, killed);
    assert_eq!(starts.len(), 1, "n2 starts once: {:?}", net.log[1]);
    assert!(
        starts[0] <= killed + DEAD_AFTER + 2 * INTERVAL,
        "n2 started at {:?}, {:?} after the owner died",
        starts[0],
        starts[0] - killed
    );
    assert!(net.starts(2, killed).is_empty(), "{:?}", net.log[2]);
}

/// A fence is not the end of ownership: an owner whose votes lapsed while its peers
/// stayed up (its voters' heartbeats were late) stops the group, and claims it again
/// as soon as it hears them, and wins it back.
#[test]
fn a_fenced_owner_claims_again_and_wins() {
    let mut net = Net::new();
    net.run_until(ms(200));
    assert_eq!(net.starts(0, Duration::ZERO).len(), 1, "n1 owns the group");
    // n1 hears nobody for a while (the others still hear it): its votes lapse.
    let cut = net.now;
    net.cut.insert((1, 0));
    net.cut.insert((2, 0));
    net.run_until(cut + DEAD_AFTER);
    let fenced = net.log[0].iter().any(|(t, o)| {
        *t >= cut
            && matches!(
                o,
                Output::Stop {
                    cause: StopCause::Fence,
                    ..
                }
            )
    });
    assert!(fenced, "n1 fenced itself: {:?}", net.log[0]);
    net.cut.clear();
    let healed = net.now;
    net.run_until(healed + ms(200));
    let online: Vec<usize> = (0..3)
        .filter(|&i| net.engines[i].held_groups().any(|(g, _)| g == "vip"))
        .collect();
    assert_eq!(online.len(), 1, "one owner after the heal");
    let back = net.starts(online[0], healed);
    assert!(
        back.first()
            .is_some_and(|t| *t <= healed + DEAD_AFTER + 2 * INTERVAL),
        "the group is back within the bound: {:?}",
        net.log
    );
}

/// Who holds `vip` now.
fn holders(net: &Net) -> Vec<usize> {
    (0..3)
        .filter(|&i| {
            !net.dead.contains(&i) && net.engines[i].held_groups().any(|(g, _)| g == "vip")
        })
        .collect()
}

/// Item 3/6 of issue 12: an owner whose agent says it cannot host the group any
/// more hands it over as in a graceful leave (the successor starts at once, long
/// before a detection timeout), every node sees why, and an owner that is able
/// again does not take it back under failback `Never`.
#[test]
fn an_owner_that_becomes_unable_hands_over_at_once_and_every_node_sees_why() {
    let mut net = Net::new();
    net.run_until(ms(200));
    assert_eq!(holders(&net), vec![0]);
    let failed = net.now;
    let groups = BTreeMap::from([("vip".to_owned(), UnableReason::ResourceFailed)]);
    net.feed(0, Input::Unable { groups });
    net.run_until(failed + INTERVAL);
    let released = net.log[0].iter().any(|(t, o)| {
        *t >= failed
            && matches!(
                o,
                Output::Stop {
                    cause: StopCause::Release(Reason::ResourceFailed),
                    ..
                }
            )
    });
    assert!(released, "n1 released the group: {:?}", net.log[0]);
    let starts = net.starts(1, failed);
    assert_eq!(starts.len(), 1, "n2 took over: {:?}", net.log[1]);
    assert!(
        starts[0] < failed + INTERVAL,
        "a handover, not a detection: {:?}",
        starts[0] - failed
    );
    assert!(net.log[1].iter().any(|(_, o)| matches!(
        o,
        Output::Start {
            reason: Reason::ResourceFailed,
            ..
        }
    )));
    let said = net.engines[2].explain("vip", "n1", net.now).unwrap();
    assert!(said.contains("ResourceFailed"), "{said}");
    // Able again: failback Never keeps the group on n2.
    net.feed(
        0,
        Input::Unable {
            groups: BTreeMap::new(),
        },
    );
    let able = net.now;
    net.run_until(able + ms(200));
    assert_eq!(holders(&net), vec![1]);
    assert!(
        net.engines[2]
            .explain("vip", "n1", net.now)
            .unwrap()
            .contains("eligible")
    );
}

fn limited(max: u32) -> ClusterModel {
    let mut m = model();
    m.quarantine = None;
    m.groups[0].failover_limit = Some(FailoverLimit {
        max,
        period: Duration::from_secs(3600),
    });
    m
}

/// Node `i`'s count, as its report (`status.failovers`) gives it.
fn counted(net: &Net, i: usize) -> usize {
    net.engines[i]
        .failover_counts(net.now)
        .find(|(group, _)| *group == "vip")
        .map_or(0, |(_, count)| count)
}

/// Item 7 of issue 12: the count travels with the group. The new owner counts the
/// failover and its heartbeats carry it: every node, a restarted one too, counts
/// the same, and the failover past the limit is refused on every node at once
/// (Failed) until a person clears the count.
#[test]
fn failovers_travel_with_the_group_and_past_the_limit_it_is_failed_everywhere() {
    let model = limited(1);
    let mut net = Net::of(model.clone());
    net.run_until(ms(200));
    assert_eq!(holders(&net), vec![0]);
    assert_eq!(
        (0..3).map(|i| counted(&net, i)).sum::<usize>(),
        0,
        "placing is no failover"
    );
    // The owner dies: n2 takes over, the first failover, counted by all.
    net.dead.insert(0);
    let killed = net.now;
    net.run_until(killed + ms(200));
    assert_eq!(holders(&net), vec![1]);
    assert_eq!((counted(&net, 1), counted(&net, 2)), (1, 1));
    // n1 comes back as a new agent with no memory: it learns the count from n2.
    net.dead.remove(&0);
    let model = Arc::new(model);
    net.engines[0] = engine(0, &model, 2, net.now);
    let back = net.now;
    net.run_until(back + ms(200));
    assert_eq!(holders(&net), vec![1], "failback Never");
    assert_eq!(counted(&net, 0), 1, "the restarted agent learned the count");
    // n2 dies: a second failover would exceed the limit. No one starts the group
    // and every survivor sees it Failed.
    net.dead.insert(1);
    let killed = net.now;
    net.run_until(killed + ms(200));
    assert!(holders(&net).is_empty());
    assert!(net.starts(0, killed).is_empty() && net.starts(2, killed).is_empty());
    for i in [0, 2] {
        assert_eq!(
            net.engines[i].failed_groups().collect::<Vec<_>>(),
            vec!["vip"]
        );
        let said = net.engines[i].explain("vip", "n1", net.now).unwrap();
        assert!(said.contains("stays offline"), "{said}");
    }
    // A person clears the count (the same value reaches every agent): n1, first in
    // order, takes the group within the bound.
    for i in [0, 2] {
        net.feed(
            i,
            Input::ClearFailures {
                group: "vip".into(),
                token: clear_token("2026-12-01T09:00"),
            },
        );
    }
    let cleared = net.now;
    net.run_until(cleared + ms(100));
    assert_eq!(holders(&net), vec![0]);
    assert!(net.engines[2].failed_groups().next().is_none());
    assert_eq!(
        (counted(&net, 0), counted(&net, 2)),
        (0, 0),
        "after the clear the group is placed afresh: no failover"
    );
}

/// A holder that has not seen the latest clear advertises a count from before it:
/// a node that has cleared ignores it, instead of undoing the clear.
#[test]
fn a_count_from_before_a_clear_is_not_adopted() {
    let mut net = Net::of(limited(1));
    net.run_until(ms(200));
    net.dead.insert(0);
    let killed = net.now;
    net.run_until(killed + ms(200));
    assert_eq!(holders(&net), vec![1]);
    assert_eq!(counted(&net, 2), 1);
    net.feed(
        2,
        Input::ClearFailures {
            group: "vip".into(),
            token: clear_token("a"),
        },
    );
    let cleared = net.now;
    net.run_until(cleared + ms(100));
    assert_eq!(counted(&net, 2), 0, "n2's old count is ignored");
    assert_eq!(counted(&net, 1), 1, "n2 has not seen the clear");
    // Once the holder sees it too, both count from it; repeating it changes nothing.
    for _ in 0..2 {
        net.feed(
            1,
            Input::ClearFailures {
                group: "vip".into(),
                token: clear_token("a"),
            },
        );
    }
    net.run_until(net.now + ms(100));
    assert_eq!((counted(&net, 1), counted(&net, 2)), (0, 0));
}

/// Item 7 of issue 12: a Failed group stays Failed when the agent of a member
/// restarts with no memory, its last owner's (whose death made the group Failed)
/// included. The restarted member learns the count and the Failed state from its
/// peers before it can claim, and nobody takes the group until a person clears the
/// count; then it is placed afresh (failback is `Never`: nothing "fails back").
#[test]
fn a_failed_group_stays_failed_when_a_member_restarts() {
    // n2 is the last owner; n1 the member that ranks first.
    for restarted in [1, 0] {
        let model = Arc::new(limited(1));
        let mut net = Net::of((*model).clone());
        net.run_until(ms(200));
        // Failover 1 of 1: n1 dies, n2 takes over; n1 comes back, n2 keeps it.
        net.dead.insert(0);
        net.run_until(net.now + ms(200));
        net.dead.remove(&0);
        net.engines[0] = engine(0, &model, 2, net.now);
        net.run_until(net.now + ms(200));
        assert_eq!(holders(&net), vec![1]);
        // n2 dies: the group is Failed.
        net.dead.insert(1);
        net.run_until(net.now + ms(200));
        assert!(holders(&net).is_empty());
        // A member's agent restarts.
        net.dead.remove(&restarted);
        net.engines[restarted] = engine(restarted, &model, 3, net.now);
        let back = net.now;
        net.run_until(back + ms(300));
        let live: Vec<usize> = (0..3).filter(|i| !net.dead.contains(i)).collect();
        for &i in &live {
            assert!(
                net.starts(i, back).is_empty(),
                "n{} started the Failed group after n{} restarted: {:?}",
                i + 1,
                restarted + 1,
                net.log[i]
            );
            assert_eq!(
                net.engines[i].failed_groups().collect::<Vec<_>>(),
                vec!["vip"],
                "n{} after n{} restarted",
                i + 1,
                restarted + 1
            );
            assert_eq!(counted(&net, i), 1, "n{}", i + 1);
        }
        // A person clears the count on every live member: the group is placed on
        // the first eligible member, as a placement (no failback, no failover).
        for &i in &live {
            net.feed(
                i,
                Input::ClearFailures {
                    group: "vip".into(),
                    token: clear_token("cleared"),
                },
            );
        }
        let cleared = net.now;
        net.run_until(cleared + ms(100));
        assert_eq!(holders(&net), vec![0], "n{} restarted", restarted + 1);
        let reasons: Vec<Reason> = net.log[0]
            .iter()
            .filter(|(t, _)| *t >= cleared)
            .filter_map(|(_, o)| match o {
                Output::Start { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(
            reasons,
            vec![Reason::Placed],
            "n{} restarted",
            restarted + 1
        );
    }
}

/// Events of engine `i` from `since` on.
fn events(net: &Net, i: usize, since: Duration) -> Vec<Event> {
    net.log[i]
        .iter()
        .filter(|(t, _)| *t >= since)
        .filter_map(|(_, o)| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Makes engine `i` unable to host `vip` (or able again), and runs 100 ms.
fn set_unable(net: &mut Net, i: usize, unable: bool) {
    let groups = if unable {
        BTreeMap::from([("vip".to_owned(), UnableReason::ResourceFailed)])
    } else {
        BTreeMap::new()
    };
    net.feed(i, Input::Unable { groups });
    let t = net.now;
    net.run_until(t + ms(100));
}

/// Issue 13 item 4, docs/operations.md "One configuration on every member": two
/// members on one configuration, one (n1, which ranks first and fails back) on
/// another. Within the grace the skew changes nothing: n1 takes the group back as
/// usual. Past it, n1 is outvoted: it is reported on every side, it keeps nothing it
/// does not hold and takes nothing (no failback to it), and the group keeps one
/// owner. Once the others run its configuration too, it takes the group back at once.
#[test]
fn a_member_whose_configuration_a_majority_outvotes_takes_no_group() {
    let mut net = Net::of(ClusterModel {
        groups: vec![GroupModel {
            failback: FailbackPolicy::Immediate {
                stabilize_for: Duration::ZERO,
            },
            ..model().groups[0].clone()
        }],
        ..model()
    });
    net.run_until(ms(200));
    assert_eq!(holders(&net), vec![0]);
    let reconfigured = Arc::new(net.engines[0].model().clone());
    let reload = |net: &mut Net, i: usize| {
        net.feed(
            i,
            Input::Configure {
                model: reconfigured.clone(),
                hash: 2,
                witness: None,
            },
        );
    };
    // n1 alone reloads a configuration of hash 2; n2 and n3 stay on hash 1.
    let skewed = net.now;
    reload(&mut net, 0);
    // Within the grace: n1 hands over and fails back as always.
    set_unable(&mut net, 0, true);
    assert_eq!(holders(&net), vec![1]);
    set_unable(&mut net, 0, false);
    assert_eq!(holders(&net), vec![0], "failback within the grace");
    assert!(!net.engines[0].config_outvoted());
    assert!(net.engines[1].config_mismatch().is_empty());
    // Past the grace: reported on both sides, n1 outvoted by n2 and n3.
    net.run_until(skewed + CONFIG_GRACE + ms(10));
    assert!(net.engines[0].config_outvoted());
    assert_eq!(
        net.engines[0].config_mismatch(),
        &BTreeMap::from([("n2".into(), 1), ("n3".into(), 1)])
    );
    assert!(events(&net, 0, skewed).contains(&Event::ConfigOutvoted {
        ours: 2,
        majority: 1
    }));
    for i in [1, 2] {
        assert!(!net.engines[i].config_outvoted());
        assert_eq!(
            net.engines[i].config_mismatch(),
            &BTreeMap::from([("n1".into(), 2)])
        );
        assert!(events(&net, i, skewed).contains(&Event::ConfigMismatch {
            node: "n1".into(),
            theirs: 2,
            ours: 1
        }));
    }
    // It keeps what it holds...
    assert_eq!(holders(&net), vec![0]);
    // ...hands it over as before, and does not take it back.
    set_unable(&mut net, 0, true);
    set_unable(&mut net, 0, false);
    let outvoted = net.now;
    net.run_until(outvoted + ms(500));
    assert_eq!(holders(&net), vec![1], "no failback to an outvoted member");
    assert!(!net.claimed(0, outvoted), "{:?}", net.log[0]);
    for i in 0..3 {
        let why = net.engines[i].explain("vip", "n1", net.now).unwrap();
        assert!(why.contains("another configuration"), "{i}: {why}");
    }
    // n2 and n3 reload the same configuration: the mismatch ends and n1 takes the
    // group back at once.
    let synced = net.now;
    reload(&mut net, 1);
    reload(&mut net, 2);
    net.run_until(synced + ms(100));
    assert_eq!(
        holders(&net),
        vec![0],
        "failback once the configurations agree"
    );
    assert!(events(&net, 0, synced).contains(&Event::ConfigOutvotedEnded));
    assert!(events(&net, 1, synced).contains(&Event::ConfigMismatchEnded { node: "n1".into() }));
    for e in &net.engines {
        assert!(!e.config_outvoted() && e.config_mismatch().is_empty());
    }
}
