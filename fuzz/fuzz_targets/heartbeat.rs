//! Feeds arbitrary bytes to the heartbeat decoder and to a live membership state
//! machine: no input may panic. The first byte chooses whether the body is signed
//! with the right key, so the parser behind the MAC check is reached too.
#![no_main]

use std::time::Duration;

use failover::membership::{Keyring, Membership, wire, wire::Heartbeat};
use failover::placement::{ClusterModel, MemberModel, QuorumMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = Keyring::new(vec![7; 32], None).expect("a 32-byte key is valid");
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let datagram = if mode & 1 == 1 {
        // A valid header and MAC around the fuzzed body.
        let mut bytes = wire::MAGIC.to_vec();
        bytes.push(wire::VERSION);
        bytes.extend_from_slice(b"\x00\x09default/c");
        bytes.extend_from_slice(rest);
        let mac = keys.sign(&bytes);
        bytes.extend_from_slice(&mac);
        bytes
    } else {
        rest.to_vec()
    };
    let _ = Heartbeat::decode(&datagram, "default/c", &keys);
    let model = ClusterModel {
        cluster: "default/c".into(),
        members: ["a", "b", "c"]
            .iter()
            .map(|n| MemberModel {
                name: n.to_string(),
                priority: 100,
                paused: false,
            })
            .collect(),
        quorum: QuorumMode::Majority,
        interval: Duration::from_millis(200),
        dead_after: Duration::from_secs(1),
        quarantine: None,
        groups: vec![],
    };
    let mut m = Membership::new("a", &model, 1, keys, 1);
    let _ = m.receive(
        &datagram,
        usize::from(mode % 4),
        Duration::from_millis(u64::from(mode)),
    );
    let _ = m.quorate(Duration::from_secs(1), false);
});
