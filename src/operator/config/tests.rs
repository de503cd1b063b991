//! Tests of the rendering of the ClusterConfig: the documents the agent loads, their
//! hash, the clear-failures values beside them, and the members' addresses.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::{NodeAddress, node_address, resolve_addresses};
use crate::api::load_documents;
use crate::contract::model::{AgentConfig, config_hash};
use crate::contract::render::render_config;
use crate::operator::build;
use crate::operator::fixtures::{ClusterFixture, NS, cluster, group, ip_of, node, resolved};

#[test]
fn config_map_holds_the_documents_the_agent_loads_and_their_hash() {
    let mut c = cluster().member("c");
    c.spec.members[2].address = Some("192.0.2.3".into());
    let groups = [
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    ];
    let rendered = render_config(&resolved(&c), &groups).unwrap();
    let (loaded, loaded_groups) = load_documents(&rendered.yaml).unwrap();
    // Addresses: from the Node when unset, the spec's when set.
    let addresses: Vec<_> = loaded
        .spec
        .members
        .iter()
        .map(|m| m.address.clone().unwrap())
        .collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.2", "192.0.2.3"]);
    // Groups sorted by name, spec only.
    let names: Vec<_> = loaded_groups.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["db", "web"]);
    assert!(loaded.status.is_none());
    assert_eq!(loaded.namespace().as_deref(), Some(NS));
    // The hash is what the agent computes from what it loads.
    assert_eq!(
        rendered.hash,
        format!("{:016x}", config_hash(&loaded, &loaded_groups))
    );
    // And the standalone agent accepts the rendered file and computes the same hash.
    let agent = AgentConfig::from_yaml(&rendered.yaml).unwrap();
    assert_eq!(rendered.hash, format!("{:016x}", agent.hash));
    assert_eq!(rendered.hash.len(), 16);
    assert!(
        rendered
            .hash
            .chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase())
    );

    let cm = build::config_map(&c, &rendered);
    assert_eq!(cm.name_any(), "c-config");
    let data = cm.data.unwrap();
    assert_eq!(data["hash"], rendered.hash);
    assert_eq!(data["config.yaml"], rendered.yaml);
    // No group asks to clear failures: no key.
    assert!(!data.contains_key("clear-failures.json"));
}

#[test]
fn clear_failures_annotations_ride_beside_the_config_without_changing_its_hash() {
    let c = resolved(&cluster());
    let plain = [
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    ];
    let mut annotated = plain.clone();
    annotated[0]
        .annotations_mut()
        .insert("failover.dev/clear-failures".into(), "2026-11-22".into());
    let before = render_config(&c, &plain).unwrap();
    let after = render_config(&c, &annotated).unwrap();
    assert_eq!(before.hash, after.hash);
    assert_eq!(before.yaml, after.yaml);
    assert_eq!(
        after.clear_failures,
        BTreeMap::from([("web".to_owned(), "2026-11-22".to_owned())])
    );
    let data = build::config_map(&c, &after).data.unwrap();
    let values: BTreeMap<String, String> =
        serde_json::from_str(&data["clear-failures.json"]).unwrap();
    assert_eq!(values, after.clear_failures);
    // What the agent reads back.
    let (_, read) =
        crate::contract::source::parse_config_map(&build::config_map(&c, &after)).unwrap();
    assert_eq!(read, after.clear_failures);
}

#[test]
fn the_hash_follows_the_spec_not_the_order_or_the_status() {
    let c = resolved(&cluster());
    let (web, db) = (
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    );
    let one = render_config(&c, &[web.clone(), db.clone()]).unwrap();
    let mut with_status = c.clone();
    with_status.status = Some(Default::default());
    with_status.metadata.generation = Some(7);
    assert_eq!(
        one,
        render_config(&with_status, &[db.clone(), web.clone()]).unwrap()
    );
    let mut changed = c.clone();
    changed.spec.heartbeat.port = 7800;
    assert_ne!(one.hash, render_config(&changed, &[web, db]).unwrap().hash);
}

#[test]
fn members_without_an_address_or_a_known_node_are_problems_naming_the_field() {
    let c = cluster().member("ghost").member("bare");
    let problems = resolve_addresses(&c, ip_of).unwrap_err();
    let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["spec.members[2].node", "spec.members[3].node"]);
    assert!(
        problems[0].message.contains("does not exist"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].message.contains("no InternalIP"),
        "{}",
        problems[1]
    );
    assert_eq!(node_address(None), NodeAddress::Unknown);
    assert_eq!(
        node_address(Some(&node("x", None))),
        NodeAddress::NoInternalIp
    );
    assert_eq!(
        node_address(Some(&node("x", Some("fd00::1")))),
        NodeAddress::Ip("fd00::1".into())
    );
}
