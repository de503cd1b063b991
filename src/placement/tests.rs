//! Table tests of the ownership rules, one per scenario the product must serve.

use super::*;
use jiff::civil::time;

const S: Duration = Duration::from_secs(1);

fn member(name: &str, priority: u8) -> MemberModel {
    MemberModel {
        name: name.into(),
        priority,
        paused: false,
    }
}

fn group(name: &str, preferred: &[&str], failback: FailbackPolicy) -> GroupModel {
    GroupModel {
        name: name.into(),
        preferred_owners: preferred.iter().map(|s| s.to_string()).collect(),
        failback,
        failover_limit: None,
        owner: None,
    }
}

fn model(members: Vec<MemberModel>, groups: Vec<GroupModel>) -> ClusterModel {
    ClusterModel {
        cluster: "default/test".into(),
        members,
        quorum: QuorumMode::Majority,
        interval: Duration::from_millis(200),
        dead_after: S,
        quarantine: None,
        groups,
    }
}

/// A view from `me` in which exactly `alive` members are alive and connected,
/// each alive since t=0.
fn view(me: &str, m: &ClusterModel, alive: &[&str]) -> View {
    View {
        me: me.into(),
        quorate: true,
        members: m
            .members
            .iter()
            .map(|x| {
                let up = alive.contains(&x.name.as_str());
                (
                    x.name.clone(),
                    MemberStatus {
                        alive: up,
                        connected: up,
                        alive_since: up.then_some(Duration::ZERO),
                        ..MemberStatus::default()
                    },
                )
            })
            .collect(),
    }
}

fn held_by(m: &ClusterModel, holder: Option<&str>) -> History {
    let mut h = History::default();
    for g in &m.groups {
        h.groups.insert(
            g.name.clone(),
            GroupHistory {
                holder: holder.map(str::to_string),
                ..GroupHistory::default()
            },
        );
    }
    h
}

fn at(secs: u64) -> Now {
    Now {
        mono: Duration::from_secs(secs),
        wall: Timestamp::UNIX_EPOCH,
    }
}

fn owner(d: &Decision) -> Option<&str> {
    d.owner.as_deref()
}

#[test]
fn primary_secondary_backup_with_immediate_failback() {
    let m = model(
        vec![member("p", 200), member("s", 100), member("b", 50)],
        vec![group(
            "vip",
            &[],
            FailbackPolicy::Immediate {
                stabilize_for: 30 * S,
            },
        )],
    );
    let g = &m.groups[0];
    // Nobody holds it yet: the Primary gets it.
    let d = decide(
        &view("s", &m, &["p", "s", "b"]),
        &m,
        &History::default(),
        at(100),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Placed));
    // The Primary dies: the Secondary takes over.
    let d = decide(
        &view("s", &m, &["s", "b"]),
        &m,
        &held_by(&m, Some("p")),
        at(100),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::OwnerLost));
    assert!(d.message.contains("p is not alive"), "{}", d.message);
    // Secondary dies too: the Backup.
    let d = decide(
        &view("b", &m, &["b"]),
        &m,
        &held_by(&m, Some("s")),
        at(100),
        g,
    );
    assert_eq!(owner(&d), Some("b"));
    // The Primary returns: it must be stable for 30 s before it takes the VIP back.
    let mut v = view("s", &m, &["p", "s", "b"]);
    v.members.get_mut("p").unwrap().alive_since = Some(Duration::from_secs(90));
    let h = held_by(&m, Some("s"));
    let d = decide(&v, &m, &h, at(100), g);
    assert_eq!(
        (owner(&d), d.reason),
        (Some("s"), Reason::FailbackStabilizing)
    );
    let d = decide(&v, &m, &h, at(120), g);
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Failback));
    // The returning Primary itself waits for the holder to hand over.
    let mut vp = v.clone();
    vp.me = "p".into();
    let d = decide(&vp, &m, &h, at(120), g);
    assert_eq!(owner(&d), Some("s"));
}

#[test]
fn failback_never_keeps_the_group() {
    let m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    let d = decide(
        &view("s", &m, &["p", "s"]),
        &m,
        &held_by(&m, Some("s")),
        at(1000),
        &m.groups[0],
    );
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::FailbackDisabled));
}

#[test]
fn failback_only_inside_its_window() {
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let policy = FailbackPolicy::Window {
        stabilize_for: S,
        windows: vec![DailyWindow {
            start: time(22, 0, 0, 0),
            end: time(6, 0, 0, 0),
            days: vec![jiff::civil::Weekday::Saturday],
        }],
        time_zone: tz.clone(),
    };
    let m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], policy)],
    );
    let g = &m.groups[0];
    let h = held_by(&m, Some("s"));
    let v = view("s", &m, &["p", "s"]);
    let wall = |s: &str| {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
    };
    let now = |w| Now {
        mono: Duration::from_secs(100),
        wall: w,
    };
    // Saturday 2026-11-21 21:59 Berlin: outside.
    let d = decide(&v, &m, &h, now(wall("2026-11-21T21:59")), g);
    assert_eq!(d.reason, Reason::FailbackOutsideWindow);
    // Saturday 23:00 and Sunday 05:59 (the window that started Saturday): inside.
    for inside in ["2026-11-21T23:00", "2026-11-22T05:59"] {
        let d = decide(&v, &m, &h, now(wall(inside)), g);
        assert_eq!(
            (owner(&d), d.reason),
            (Some("p"), Reason::Failback),
            "{inside}"
        );
    }
    // Sunday 06:00 (end is exclusive) and Sunday 23:00 (Sunday has no window): outside.
    for outside in ["2026-11-22T06:00", "2026-11-22T23:00"] {
        let d = decide(&v, &m, &h, now(wall(outside)), g);
        assert_eq!(d.reason, Reason::FailbackOutsideWindow, "{outside}");
    }
}

#[test]
fn n_plus_one_standby_and_cascading_over_two_failures() {
    let m = model(
        vec![
            member("n1", 100),
            member("n2", 100),
            member("n3", 100),
            member("n4", 100),
        ],
        vec![
            group("a", &["n1", "n4"], FailbackPolicy::Never),
            group("b", &["n2", "n4"], FailbackPolicy::Never),
            group("c", &["n3", "n4"], FailbackPolicy::Never),
        ],
    );
    let all = ["n1", "n2", "n3", "n4"];
    let ds = placement(&view("n4", &m, &all), &m, &History::default(), at(10));
    assert_eq!(owner(&ds["a"]), Some("n1"));
    assert_eq!(owner(&ds["b"]), Some("n2"));
    assert_eq!(owner(&ds["c"]), Some("n3"));
    // n1 fails: the standby takes a; n2 fails too: the standby takes b as well.
    let mut h = History::default();
    for (g, o) in [("a", "n1"), ("b", "n2"), ("c", "n3")] {
        h.groups.insert(
            g.into(),
            GroupHistory {
                holder: Some(o.into()),
                ..GroupHistory::default()
            },
        );
    }
    let ds = placement(&view("n4", &m, &["n2", "n3", "n4"]), &m, &h, at(10));
    assert_eq!(owner(&ds["a"]), Some("n4"));
    assert_eq!(owner(&ds["b"]), Some("n2"));
    let ds = placement(&view("n4", &m, &["n3", "n4"]), &m, &h, at(10));
    assert_eq!(owner(&ds["a"]), Some("n4"));
    assert_eq!(owner(&ds["b"]), Some("n4"));
    // Cascading beyond the list: with n4 gone too, the remaining member by priority/name.
    let ds = placement(&view("n3", &m, &["n3"]), &m, &h, at(10));
    assert_eq!(owner(&ds["a"]), Some("n3"));
}

#[test]
fn order_is_preferred_then_priority_then_name() {
    let m = model(
        vec![
            member("z", 10),
            member("b", 50),
            member("a", 50),
            member("top", 90),
        ],
        vec![group("g", &["z"], FailbackPolicy::Never)],
    );
    assert_eq!(m.order(&m.groups[0]), vec!["z", "top", "a", "b"]);
}

#[test]
fn paused_members_own_nothing_and_hand_over() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    m.members[0].paused = true;
    let g = &m.groups[0];
    let d = decide(
        &view("s", &m, &["p", "s"]),
        &m,
        &held_by(&m, Some("p")),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::OwnerPaused));
    assert!(d.message.contains("paused"), "{}", d.message);
    assert_eq!(
        ineligibility(&view("s", &m, &["p", "s"]), &m, g, "p"),
        Some(Ineligible::Paused)
    );
}

#[test]
fn leaving_owner_hands_over_at_once() {
    let m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    let mut v = view("s", &m, &["p", "s"]);
    v.members.get_mut("p").unwrap().leaving = true;
    let d = decide(&v, &m, &held_by(&m, Some("p")), at(5), &m.groups[0]);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::OwnerLeaving));
}

#[test]
fn members_unable_to_host_are_skipped() {
    let m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    let mut v = view("s", &m, &["p", "s"]);
    v.members
        .get_mut("p")
        .unwrap()
        .unable
        .insert("vip".into(), UnableReason::SubnetAbsent);
    let d = decide(&v, &m, &History::default(), at(5), &m.groups[0]);
    assert_eq!(owner(&d), Some("s"));
    let why = explain(&v, &m, &History::default(), at(5), &m.groups[0], "p");
    assert!(why.contains("cannot host"), "{why}");
    assert!(why.contains("SubnetAbsent"), "{why}");
}

/// docs/operations.md, "One configuration on every member": a member whose
/// configuration a majority outvotes takes no group, keeps the one it runs (also
/// when it is pinned there), and a group it hands over moves for no failure.
#[test]
fn a_member_with_an_outvoted_configuration_keeps_what_it_runs_and_takes_nothing() {
    let mut m = model(
        vec![member("p", 200), member("s", 100), member("b", 50)],
        vec![group(
            "vip",
            &[],
            FailbackPolicy::Immediate {
                stabilize_for: Duration::ZERO,
            },
        )],
    );
    let mut v = view("b", &m, &["p", "s", "b"]);
    v.members.get_mut("p").unwrap().config_outvoted = true;
    let g = m.groups[0].clone();
    let d = decide(&v, &m, &History::default(), at(5), &g);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::Placed));
    let why = explain(&v, &m, &History::default(), at(5), &g, "p");
    assert!(why.contains("another configuration"), "{why}");
    // It runs the group: it keeps it, no failback moves it away from it either.
    let d = decide(&v, &m, &held_by(&m, Some("p")), at(5), &g);
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Kept));
    let d = decide(&v, &m, &held_by(&m, Some("b")), at(5), &g);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::Failback));
    // Released by it while alive: the successor takes it over for no failure.
    let mut released = History::default();
    released.groups.entry("vip".into()).or_default().released_by = Some("p".into());
    let d = decide(&v, &m, &released, at(5), &g);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::Placed));
    // Pinned to it: it keeps the group it runs, and is not given one it does not.
    m.groups[0].owner = Some("p".into());
    let g = &m.groups[0];
    let d = decide(&v, &m, &held_by(&m, Some("p")), at(5), g);
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Kept));
    let d = decide(&v, &m, &History::default(), at(5), g);
    assert_eq!(owner(&d), Some("s"));
}

#[test]
fn an_owner_that_becomes_unable_hands_over_with_the_reason_and_may_fail_back() {
    let m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group(
            "vip",
            &[],
            FailbackPolicy::Immediate {
                stabilize_for: Duration::ZERO,
            },
        )],
    );
    let g = &m.groups[0];
    for (why, reason) in [
        (UnableReason::ResourceFailed, Reason::ResourceFailed),
        (UnableReason::InterfaceDown, Reason::InterfaceDown),
        (UnableReason::SubnetAbsent, Reason::OwnerLost),
    ] {
        // Every node sees the owner's report (it travels in its heartbeats): the
        // owner itself and the successor decide the same.
        for me in ["p", "s"] {
            let mut v = view(me, &m, &["p", "s"]);
            v.members
                .get_mut("p")
                .unwrap()
                .unable
                .insert("vip".into(), why);
            let d = decide(&v, &m, &held_by(&m, Some("p")), at(5), g);
            assert_eq!(
                (owner(&d), d.reason),
                (Some("s"), reason),
                "{why:?} seen by {me}"
            );
            assert!(d.reason.is_failover(), "{why:?}");
            let said = explain(&v, &m, &held_by(&m, Some("p")), at(5), g, "p");
            assert!(said.contains(why.code()), "{said}");
        }
    }
    // Able again: the failback policy applies (Immediate here), decided by the holder.
    let d = decide(
        &view("s", &m, &["p", "s"]),
        &m,
        &held_by(&m, Some("s")),
        at(9),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Failback));
}

#[test]
fn one_way_connectivity_makes_a_member_ineligible() {
    let m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    let mut v = view("s", &m, &["p", "s"]);
    v.members.get_mut("p").unwrap().connected = false;
    let d = decide(&v, &m, &History::default(), at(5), &m.groups[0]);
    assert_eq!(owner(&d), Some("s"));
}

#[test]
fn not_quorate_decides_nothing() {
    let m = model(
        vec![member("p", 200), member("s", 100), member("t", 50)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    let mut v = view("s", &m, &["s"]);
    v.quorate = false;
    let d = decide(&v, &m, &held_by(&m, Some("p")), at(5), &m.groups[0]);
    assert_eq!((owner(&d), d.reason), (None, Reason::NotQuorate));
}

#[test]
fn manual_move_pins_while_the_target_is_eligible() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    m.groups[0].owner = Some("s".into());
    let g = &m.groups[0];
    let d = decide(
        &view("p", &m, &["p", "s"]),
        &m,
        &held_by(&m, Some("p")),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::ManualMove));
    assert!(d.reason.is_planned_move());
    // The pinned node is gone: normal rules apply.
    let d = decide(
        &view("p", &m, &["p"]),
        &m,
        &held_by(&m, Some("p")),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Kept));
}

/// What docs/operations.md says of a pinned group: when the pinned member fails, the
/// group fails over like any other (it does not wait for it), and it goes back to
/// the pinned member when that one is eligible again, whatever the failback policy.
#[test]
fn a_pinned_group_fails_over_and_returns_to_its_pin() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    m.groups[0].owner = Some("s".into());
    let g = &m.groups[0];
    let d = decide(
        &view("p", &m, &["p"]),
        &m,
        &held_by(&m, Some("s")),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::OwnerLost));
    let d = decide(
        &view("p", &m, &["p", "s"]),
        &m,
        &held_by(&m, Some("p")),
        at(9),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::ManualMove));
}

#[test]
fn failover_limit_marks_the_group_failed_until_the_count_expires() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    m.groups[0].failover_limit = Some(FailoverLimit {
        max: 2,
        period: 60 * S,
    });
    let g = &m.groups[0];
    let mut h = held_by(&m, Some("s"));
    h.groups.get_mut("vip").unwrap().failovers = [10 * S, 20 * S].into_iter().collect();
    // The holder is fine: it keeps the group (no failover is due; p ranks higher
    // but failback is Never).
    let d = decide(&view("p", &m, &["p", "s"]), &m, &h, at(30), g);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::FailbackDisabled));
    // The holder dies: the failover would be the third; the group is Failed.
    let d = decide(&view("p", &m, &["p"]), &m, &h, at(30), g);
    assert_eq!((owner(&d), d.reason), (None, Reason::FailoverLimitReached));
    assert!(d.message.contains("stays offline"), "{}", d.message);
    // A resource fails on the holder: Failed too, on the holder as on the others,
    // so the holder stops it rather than keeping a failed group.
    for me in ["p", "s"] {
        let mut v = view(me, &m, &["p", "s"]);
        v.members
            .get_mut("s")
            .unwrap()
            .unable
            .insert("vip".into(), UnableReason::ResourceFailed);
        let d = decide(&v, &m, &h, at(30), g);
        assert_eq!((owner(&d), d.reason), (None, Reason::FailoverLimitReached));
    }
    // A planned move is no failover: a leaving holder hands over as usual.
    let mut v = view("p", &m, &["p", "s"]);
    v.members.get_mut("s").unwrap().leaving = true;
    let d = decide(&v, &m, &h, at(30), g);
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::OwnerLeaving));
    // Once the first failover is older than the period, moves resume.
    let d = decide(&view("p", &m, &["p"]), &m, &h, at(71), g);
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::OwnerLost));
}

#[test]
fn flapping_members_are_quarantined_and_rank_last() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group(
            "vip",
            &[],
            FailbackPolicy::Immediate { stabilize_for: S },
        )],
    );
    m.quarantine = Some(QuarantinePolicy {
        failures: 3,
        period: 60 * S,
        duration: 120 * S,
    });
    let g = &m.groups[0];
    let mut h = held_by(&m, Some("s"));
    h.member_failures
        .insert("p".into(), [10 * S, 20 * S, 30 * S].into_iter().collect());
    let v = view("s", &m, &["p", "s"]);
    // p is back and better, but quarantined: no failback.
    let d = decide(&v, &m, &h, at(40), g);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::Kept));
    assert!(explain(&v, &m, &h, at(40), g, "p").contains("quarantined"));
    // Nobody else can run it: the quarantined member may.
    let d = decide(
        &view("p", &m, &["p"]),
        &m,
        &held_by(&m, Some("s")),
        at(40),
        g,
    );
    let mut h2 = held_by(&m, Some("s"));
    h2.member_failures = h.member_failures.clone();
    let d2 = decide(&view("p", &m, &["p"]), &m, &h2, at(40), g);
    assert_eq!(owner(&d), Some("p"));
    assert_eq!(owner(&d2), Some("p"));
    // Quarantine ends 120 s after the last failure.
    let d = decide(&v, &m, &h, at(151), g);
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Failback));
}

#[test]
fn explain_names_the_owner_and_the_reason() {
    let m = model(
        vec![member("p", 200), member("s", 100), member("b", 50)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    let v = view("b", &m, &["p", "s", "b"]);
    let h = held_by(&m, Some("p"));
    let g = &m.groups[0];
    assert!(explain(&v, &m, &h, at(1), g, "p").starts_with("p owns vip"));
    let why = explain(&v, &m, &h, at(1), g, "s");
    assert!(
        why.contains("eligible") && why.contains("p owns it"),
        "{why}"
    );
    let v2 = view("b", &m, &["b", "s"]);
    assert!(explain(&v2, &m, &h, at(1), g, "p").contains("not alive"));
    assert!(explain(&v2, &m, &h, at(1), g, "x").contains("not a member"));
}

#[test]
fn no_eligible_member_says_why_for_each() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group("vip", &[], FailbackPolicy::Never)],
    );
    m.members[1].paused = true;
    let mut v = view("s", &m, &["s"]);
    v.quorate = true;
    let d = decide(&v, &m, &History::default(), at(1), &m.groups[0]);
    assert_eq!(d.reason, Reason::NoEligibleMember);
    assert!(
        d.message.contains("p is not alive") && d.message.contains("s is paused"),
        "{}",
        d.message
    );
}

#[test]
fn placement_is_deterministic() {
    let m = model(
        vec![member("a", 1), member("b", 1), member("c", 1)],
        (0..20)
            .map(|i| group(&format!("g{i}"), &[], FailbackPolicy::Never))
            .collect(),
    );
    let v = view("a", &m, &["a", "b", "c"]);
    let one = placement(&v, &m, &History::default(), at(1));
    let two = placement(&v, &m, &History::default(), at(1));
    assert_eq!(one, two);
    assert!(one.values().all(|d| owner(d) == Some("a")));
}

/// History in which `from` ran every group and released it while alive.
fn released_by(m: &ClusterModel, from: &str) -> History {
    let mut h = held_by(m, None);
    for g in h.groups.values_mut() {
        g.released_by = Some(from.into());
    }
    h
}

#[test]
fn the_successor_of_a_planned_release_says_why_the_group_moved() {
    let mut m = model(
        vec![member("p", 200), member("s", 100)],
        vec![group(
            "vip",
            &[],
            FailbackPolicy::Immediate { stabilize_for: S },
        )],
    );
    let g = &m.groups[0];
    // s ran the group and handed it back to p, which ranks higher: a failback.
    let d = decide(
        &view("p", &m, &["p", "s"]),
        &m,
        &released_by(&m, "s"),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Failback));
    assert!(d.message.contains("from s to p"), "{}", d.message);
    // Released by a member that ranks lower for no failback (e.g. unable, then able
    // again): simply placed.
    let d = decide(
        &view("s", &m, &["p", "s"]),
        &m,
        &released_by(&m, "p"),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("p"), Reason::Placed));
    // p was paused and handed the group over: the successor says so, not OwnerLost.
    m.members[0].paused = true;
    let g = &m.groups[0];
    let d = decide(
        &view("s", &m, &["p", "s"]),
        &m,
        &released_by(&m, "p"),
        at(5),
        g,
    );
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::OwnerPaused));
    assert!(d.message.contains("p is paused"), "{}", d.message);
    // p left: OwnerLeaving; p gone since: OwnerLost.
    m.members[0].paused = false;
    let g = &m.groups[0];
    let mut v = view("s", &m, &["p", "s"]);
    v.members.get_mut("p").unwrap().leaving = true;
    let d = decide(&v, &m, &released_by(&m, "p"), at(5), g);
    assert_eq!(d.reason, Reason::OwnerLeaving);
    let d = decide(&view("s", &m, &["s"]), &m, &released_by(&m, "p"), at(5), g);
    assert_eq!((owner(&d), d.reason), (Some("s"), Reason::OwnerLost));
    // Nobody released it: placed.
    let d = decide(&view("s", &m, &["s"]), &m, &held_by(&m, None), at(5), g);
    assert_eq!(d.reason, Reason::Placed);
}
