use super::*;

fn quick(nodes: usize) -> SimConfig {
    let mut c = SimConfig::new(nodes);
    c.faults = 4;
    c
}

#[test]
fn runs_are_deterministic_per_seed() {
    let config = quick(3);
    let faults = schedule(&config, 7);
    let a = run(&config, 7, &faults);
    let b = run(&config, 7, &faults);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.takeovers, b.takeovers);
}

#[test]
fn a_quiet_cluster_places_every_group_once_and_keeps_it() {
    let config = quick(3);
    let report = run(&config, 1, &[]);
    assert_eq!(report.violations(), 0, "{:?}", report.first_violation);
    assert!(report.takeovers.is_empty());
}

#[test]
fn crash_of_an_owner_is_taken_over_within_the_bound() {
    let config = quick(3);
    // n1 prefers g0 and has the top priority: it owns g0 and g1.
    let faults = vec![Fault {
        at: Duration::from_secs(3),
        op: FaultOp::Crash(0),
    }];
    let report = run(&config, 3, &faults);
    assert_eq!(report.violations(), 0, "{:?}", report.first_violation);
    assert!(!report.takeovers.is_empty());
    for t in &report.takeovers {
        assert!(*t <= config.liveness_bound(), "takeover took {t:?}");
    }
}

#[test]
fn many_random_runs_hold_the_invariants() {
    for nodes in [2, 3, 5] {
        let config = quick(nodes);
        for seed in 0..30 {
            let faults = schedule(&config, seed);
            let report = run(&config, seed, &faults);
            if report.violations() > 0 {
                let (trace, shrunk) = shrink(&config, seed, &faults);
                let trace: Vec<String> = trace.iter().map(ToString::to_string).collect();
                panic!(
                    "nodes {nodes} seed {seed}: {:?}\nshrunk trace:\n{}",
                    shrunk.first_violation,
                    trace.join("\n")
                );
            }
        }
    }
}

#[test]
fn the_checker_catches_a_broken_protocol() {
    // With quorum "none" every node acts alone: a partition must produce two
    // holders, and the safety checker (forced on) must see it.
    let mut config = quick(3);
    config.quorum = QuorumMode::None;
    let faults = vec![
        Fault {
            at: Duration::from_secs(3),
            op: FaultOp::Partition(vec![0]),
        },
        Fault {
            at: Duration::from_secs(6),
            op: FaultOp::Heal,
        },
    ];
    let mut world = World::new(config, 5, &faults);
    world.force_safety_check = true;
    world.run();
    assert!(world.report.safety_violations > 0);
}
