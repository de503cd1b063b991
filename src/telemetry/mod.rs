//! Telemetry plumbing that the agent and the operator share: the tiny HTTP
//! responder that serves `/metrics`, `/healthz` and `/readyz`, and the one-line
//! report of an error with its sources for the logs.
//!
//! Owns how things are shown, never what: each process defines its own metric
//! families and readiness (`agent::metrics`, `operator::metrics`) and hands them to
//! [`http::serve`] through [`http::Endpoints`]. It must never depend on anything of
//! the project but what it serves, and never decide anything.

pub mod http;

/// An error with its sources on one line, so the YAML parser's line and column (or
/// the API server's answer) are shown: each source that adds text is appended after
/// a colon.
pub fn error_report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
