//! Real-cluster tests of `failover operator`: the suite lives in e2e/kube/ and is
//! skipped (with a printed reason) unless `FAILOVER_E2E_KUBECONFIG` is set.

#[path = "../e2e/kube/suite.rs"]
mod suite;
