//! The `failover` binary: parses the command line and hands it to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use failover::cli::{Cli, LogFormat, Outcome, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::try_parse_invocation(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files or journald.
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format() {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(cli, &mut std::io::stdout().lock()) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::ProblemsFound) => ExitCode::FAILURE,
        Ok(Outcome::Exit(code)) => code,
        Err(error) => {
            tracing::error!(error = %failover::telemetry::error_report(&error), "command failed");
            ExitCode::from(2)
        }
    }
}
