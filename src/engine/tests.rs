//! Input → output tests of one engine. Here: the epoch's record and the
//! configuration, with a lone member. `script`: one engine whose peers' heartbeats
//! the test writes, for `voting` (votes, echoes, the ledger's epochs, majorities,
//! the witness) and `lifecycle` (fencing, graceful leave, restart). `peers`: a few
//! engines on a small network; longer multi-node behaviour is the simulator's.

mod lifecycle;
mod peers;
mod script;
mod voting;

use super::*;
use crate::placement::{FailbackPolicy, GroupModel, MemberModel};

const INTERVAL: Duration = Duration::from_millis(200);
const DEAD_AFTER: Duration = Duration::from_secs(1);

/// One member, quorum `none`: the engine takes the group by itself, so the effect
/// of each input on the epoch shows directly.
fn lone() -> Engine {
    let model = ClusterModel {
        cluster: "ns/c".into(),
        members: vec![MemberModel {
            name: "n1".into(),
            priority: 100,
            paused: false,
        }],
        quorum: QuorumMode::None,
        interval: INTERVAL,
        dead_after: DEAD_AFTER,
        quarantine: None,
        groups: vec![GroupModel {
            name: "web".into(),
            preferred_owners: vec![],
            failback: FailbackPolicy::Never,
            failover_limit: None,
            owner: None,
        }],
    };
    let keys = Keyring::new(vec![7; 32], None).unwrap();
    let model = Arc::new(model);
    let config = EngineConfig::for_model(&model);
    Engine::new(
        "n1",
        model,
        1,
        None,
        config,
        keys,
        1,
        Duration::ZERO,
        Timestamp::UNIX_EPOCH,
    )
}

/// Ticks at `now` and 1 ms later (claim, then start) and returns the actions.
fn take(engine: &mut Engine, now: Duration) -> Vec<Output> {
    engine.handle(now, Input::Tick);
    engine.handle(now + Duration::from_millis(1), Input::Tick);
    actions(engine)
}

/// The outputs that are not heartbeats or events.
fn actions(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output())
        .filter(|o| !matches!(o, Output::Broadcast(_) | Output::Event(_)))
        .collect()
}

fn epoch_of(engine: &Engine) -> Option<u64> {
    engine
        .held_groups()
        .find(|(g, _)| *g == "web")
        .map(|(_, e)| e)
}

fn start_epoch(outputs: &[Output]) -> Option<u64> {
    outputs.iter().find_map(|o| match o {
        Output::Start { epoch, .. } => Some(*epoch),
        _ => None,
    })
}

#[test]
fn a_recorded_epoch_is_the_floor_of_the_next_take() {
    let mut e = lone();
    e.handle(
        Duration::ZERO,
        Input::Recorded {
            group: "web".into(),
            epoch: 5,
        },
    );
    let out = take(&mut e, Duration::ZERO);
    assert_eq!(start_epoch(&out), Some(6), "{out:?}");
}

#[test]
fn a_recorded_epoch_not_below_the_held_one_raises_it_without_a_stop() {
    let mut e = lone();
    // Quorum `none` starts from what the node knows: nothing yet.
    assert_eq!(start_epoch(&take(&mut e, Duration::ZERO)), Some(0));
    e.handle(
        Duration::from_millis(1),
        Input::Online {
            group: "web".into(),
        },
    );
    // The record says 5 (written before every agent restarted).
    e.handle(
        Duration::from_millis(2),
        Input::Recorded {
            group: "web".into(),
            epoch: 5,
        },
    );
    assert!(actions(&mut e).is_empty(), "no stop, no start");
    assert_eq!(epoch_of(&e), Some(6));
    // A lower record changes nothing.
    e.handle(
        Duration::from_millis(3),
        Input::Recorded {
            group: "web".into(),
            epoch: 2,
        },
    );
    assert_eq!(epoch_of(&e), Some(6));
}

#[test]
fn a_superseded_record_fences_and_holds_off_the_next_claim() {
    let mut e = lone();
    // Quorum `none` starts from what the node knows: nothing yet.
    assert_eq!(start_epoch(&take(&mut e, Duration::ZERO)), Some(0));
    e.handle(
        Duration::from_millis(1),
        Input::Online {
            group: "web".into(),
        },
    );
    // A stale notice (another epoch) is ignored.
    e.handle(
        Duration::from_millis(2),
        Input::Superseded {
            group: "web".into(),
            epoch: 9,
        },
    );
    assert!(actions(&mut e).is_empty());
    let t = Duration::from_millis(3);
    e.handle(
        t,
        Input::Superseded {
            group: "web".into(),
            epoch: 0,
        },
    );
    assert_eq!(
        actions(&mut e),
        vec![Output::Stop {
            group: "web".into(),
            cause: StopCause::Fence
        }]
    );
    e.handle(
        t,
        Input::Offline {
            group: "web".into(),
        },
    );
    e.handle(t + DEAD_AFTER, Input::Tick);
    assert!(start_epoch(&actions(&mut e)).is_none(), "held off");
    let after = t + DEAD_AFTER + INTERVAL;
    assert_eq!(e.poll_timeout(), after, "wakes when the hold-off ends");
    e.handle(
        after,
        Input::Recorded {
            group: "web".into(),
            epoch: 7,
        },
    );
    assert_eq!(start_epoch(&take(&mut e, after)), Some(8));
}

#[test]
fn a_configuration_without_groups_stops_them_and_the_full_one_brings_them_back() {
    // What the agent feeds when its ClusterConfig is deleted, and when it returns.
    let mut e = lone();
    assert_eq!(start_epoch(&take(&mut e, Duration::ZERO)), Some(0));
    let t = Duration::from_millis(2);
    e.handle(
        t,
        Input::Online {
            group: "web".into(),
        },
    );
    let full = Arc::new(e.model().clone());
    let none = Arc::new(ClusterModel {
        groups: Vec::new(),
        ..e.model().clone()
    });
    e.handle(
        t,
        Input::Configure {
            model: none,
            hash: 1,
            witness: None,
        },
    );
    assert_eq!(
        actions(&mut e),
        vec![Output::Stop {
            group: "web".into(),
            cause: StopCause::Removed
        }]
    );
    e.handle(
        t,
        Input::Offline {
            group: "web".into(),
        },
    );
    assert!(e.holds_nothing());
    e.handle(
        t,
        Input::Configure {
            model: full,
            hash: 1,
            witness: None,
        },
    );
    assert!(start_epoch(&take(&mut e, t)).is_some(), "runs again");
}
