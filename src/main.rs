use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// failover: operator and node agent for failover clusters.
#[derive(Debug, Parser)]
#[command(name = "failover", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Network-namespace lab: topology, probe, echo responder, failover benchmarks.
    #[command(subcommand)]
    Lab(failover::lab::cli::LabCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Lab(cmd) => failover::lab::cli::run(cmd),
    }
}
