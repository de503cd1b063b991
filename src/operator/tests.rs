//! Tests of the operator's Lease watch: which changes of a node Lease reach the
//! controllers.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde_json::json;

use crate::contract::names;
use crate::operator::fixtures::reporting_lease;

/// Issue 9, finding 8: the Lease watch passes a node Lease to the controllers (no
/// debounce: kube's default is none) as soon as what status shows changes — the
/// owned groups, the view, the config hash — and not on a bare renewal.
#[test]
fn a_change_of_the_owned_groups_triggers_status_and_a_renewal_does_not() {
    let before = reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 1, "reason": "Placed"}}),
    );
    let mut renewed = before.clone();
    renewed.spec.as_mut().unwrap().renew_time = Some(MicroTime(
        Timestamp::now() + jiff::SignedDuration::from_secs(1),
    ));
    assert_eq!(
        super::lease_content(&before),
        super::lease_content(&renewed)
    );
    let changed = reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 2, "reason": "Failback"}}),
    );
    assert_ne!(
        super::lease_content(&before),
        super::lease_content(&changed)
    );
    let mut hash = before.clone();
    hash.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(names::CONFIG_HASH.to_owned(), "h2".to_owned());
    assert_ne!(super::lease_content(&before), super::lease_content(&hash));
}
