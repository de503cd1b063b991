//! Reconcile IO against a mocked API server.
