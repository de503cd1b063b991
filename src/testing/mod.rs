//! Test infrastructure shared by the operator's and the agent's tests: one mocked
//! Kubernetes API server ([`apiserver`]) and the API server's validation rules it
//! applies to every write ([`apiserver_rules`]).
//!
//! Compiled for tests only. It knows Kubernetes objects, kube's client and the
//! generated CRDs; it must never depend on the operator or the agent (both test
//! suites depend on it), and never hold a fixture of either: their objects, names
//! and field managers are checked in their own tests.

pub mod apiserver;
pub mod apiserver_rules;
