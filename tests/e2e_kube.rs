//! Real-cluster tests of `failover operator`: the suite lives in e2e/kube/ and is
//! skipped (with a printed reason) unless `FAILOVER_E2E_KUBECONFIG` is set. It reads
//! which node holds a VIP with the lab's sampler, so it needs the `lab` feature.
#![cfg(feature = "lab")]

#[path = "../e2e/kube/suite.rs"]
mod suite;
