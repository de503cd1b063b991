//! Placement time for the largest cluster the API allows (64 members) with 1,000
//! groups: the work a node does on every heartbeat it receives.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use failover::placement::{
    ClusterModel, FailbackPolicy, GroupHistory, GroupModel, History, MemberModel, MemberStatus,
    Now, QuorumMode, View, placement,
};

fn cluster(members: usize, groups: usize) -> (ClusterModel, View, History) {
    let names: Vec<String> = (0..members).map(|i| format!("node-{i:02}")).collect();
    let model = ClusterModel {
        cluster: "bench/cluster".into(),
        members: names
            .iter()
            .enumerate()
            .map(|(i, n)| MemberModel {
                name: n.clone(),
                priority: (i % 256) as u8,
                paused: i % 16 == 15,
            })
            .collect(),
        quorum: QuorumMode::Majority,
        interval: Duration::from_millis(200),
        dead_after: Duration::from_secs(1),
        quarantine: None,
        groups: (0..groups)
            .map(|g| GroupModel {
                name: format!("group-{g:04}"),
                preferred_owners: vec![
                    names[g % members].clone(),
                    names[(g + 7) % members].clone(),
                ],
                failback: FailbackPolicy::Immediate {
                    stabilize_for: Duration::from_secs(30),
                },
                failover_limit: None,
                owner: None,
            })
            .collect(),
    };
    // A quarter of the members are dead, so many groups fail over.
    let view = View {
        me: names[0].clone(),
        quorate: true,
        members: names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let up = i % 4 != 3;
                (
                    n.clone(),
                    MemberStatus {
                        alive: up,
                        connected: up,
                        alive_since: up.then_some(Duration::ZERO),
                        ..MemberStatus::default()
                    },
                )
            })
            .collect(),
    };
    let history = History {
        groups: model
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    g.name.clone(),
                    GroupHistory {
                        holder: Some(names[(i * 3) % members].clone()),
                        ..GroupHistory::default()
                    },
                )
            })
            .collect(),
        member_failures: BTreeMap::new(),
    };
    (model, view, history)
}

fn bench(c: &mut Criterion) {
    let (model, view, history) = cluster(64, 1000);
    let now = Now {
        mono: Duration::from_secs(3600),
        wall: jiff::Timestamp::UNIX_EPOCH,
    };
    c.bench_function("placement 64 members x 1000 groups", |b| {
        b.iter(|| {
            placement(
                black_box(&view),
                black_box(&model),
                black_box(&history),
                now,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
