//! `failover lab …`: thin command-line glue over the lab (arguments in, one call,
//! result printed). Must never: hold logic a test would want to call directly.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::LabError;
use super::bench::{self, BenchOptions, Scenario};
use super::impls::{FailoverTiming, Impl};
use super::probe::{self, ProbeConfig};
use super::topology::{self, IFACE, Lab};
use super::torture;

/// Exit code when an implementation or scenario cannot run here (scripts skip it).
pub const EXIT_UNAVAILABLE: u8 = 3;

/// Network-namespace lab commands.
#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Build a lab (bridge, node and client namespaces) and leave it; prints its prefix.
    Up {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
    /// Tear down a lab built by `up` (kills its processes, deletes its namespaces).
    Down {
        #[arg(long)]
        prefix: String,
    },
    /// Probe a VIP from the client namespace; prints a JSON summary line.
    Probe {
        #[arg(long)]
        vip: Ipv4Addr,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 2)]
        interval_ms: u64,
        #[arg(long)]
        duration_ms: u64,
        #[arg(long, default_value = IFACE)]
        iface: String,
        /// Skip the ARP who-has probe (no raw socket needed).
        #[arg(long)]
        no_arp: bool,
        /// Write one JSON line per probe interval to this file.
        #[arg(long)]
        samples: Option<PathBuf>,
    },
    /// Answer probes with this node's name (run in each node namespace).
    Echo {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        name: String,
        /// Exit after this long (bounded by design).
        #[arg(long, default_value_t = 3_600_000)]
        duration_ms: u64,
        /// Also answer HTTP health checks on this TCP port (200 to every request).
        #[arg(long)]
        http_port: Option<u16>,
        /// Start broken when this file exists: run, answer nothing.
        #[arg(long)]
        broken_if: Option<PathBuf>,
    },
    /// Run three agents undisturbed; prints one JSON line with false failovers
    /// (ownership activity after settling), resident memory and CPU per agent.
    Idle {
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        #[arg(long, default_value_t = 200)]
        heartbeat_interval_ms: u64,
        #[arg(long, default_value_t = 1000)]
        dead_after_ms: u64,
        /// Run the agents with this SCHED_RR priority (chrt --rr).
        #[arg(long)]
        realtime_priority: Option<u8>,
        /// Keep one busy worker per core for the whole run (a loaded machine).
        #[arg(long)]
        cpu_load: bool,
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Run a large cluster undisturbed for minutes; prints one JSON line with each
    /// agent's CPU and resident memory in the first and the last minute.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        #[arg(long, default_value_t = 9)]
        members: usize,
        #[arg(long, default_value_t = 20)]
        groups: usize,
        #[arg(long, default_value_t = 200)]
        heartbeat_interval_ms: u64,
        #[arg(long, default_value_t = 1000)]
        dead_after_ms: u64,
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Seeded random faults over a 3- or 5-node cluster with several groups; prints
    /// one JSON line of safety counters and exits 1 when one is non-zero (see
    /// docs/torture.md).
    Torture {
        #[arg(long)]
        seed: u64,
        /// Length of the fault schedule, seconds (the lab's set-up comes on top).
        #[arg(long)]
        duration: u64,
        /// Members (default: the seed chooses 3 or 5).
        #[arg(long)]
        nodes: Option<usize>,
        #[arg(long, default_value_t = 3)]
        groups: usize,
        #[arg(long, default_value_t = 200)]
        heartbeat_interval_ms: u64,
        #[arg(long, default_value_t = 1000)]
        dead_after_ms: u64,
        #[arg(long, default_value_t = 10)]
        probe_interval_ms: u64,
        /// Print the schedule (one JSON line per fault) to stderr before running.
        #[arg(long)]
        print_schedule: bool,
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Kill-owner twice on fresh labs, the second time while the client namespace
    /// floods every member with hostile heartbeats; prints one JSON line with both
    /// outages and, per member, the datagrams sent and counted by drop reason.
    Hostile {
        /// Hostile datagrams per second to each member (the kinds in turn).
        #[arg(long, default_value_t = 500)]
        rate: u32,
        #[arg(long, default_value_t = 200)]
        heartbeat_interval_ms: u64,
        #[arg(long, default_value_t = 1000)]
        dead_after_ms: u64,
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Flood the three lab members' heartbeat ports with hostile datagrams (run in the
    /// client namespace by `hostile`); prints one JSON line: sent and counted per member.
    Flood {
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long, default_value_t = 500)]
        rate: u32,
        #[arg(long)]
        duration_ms: u64,
        #[arg(long, default_value_t = 7946)]
        heartbeat_port: u16,
    },
    /// Print an agent's heartbeat drop counters by reason (from its /metrics) as one
    /// JSON object; run it in a lab namespace that reaches the agent.
    Scrape {
        #[arg(long)]
        addr: std::net::SocketAddr,
    },
    /// Run one scenario N times against one implementation; prints one JSON line.
    Bench {
        /// failover | keepalived | keepalived-advert<seconds> (e.g. keepalived-advert0.01)
        #[arg(long = "impl")]
        implementation: String,
        #[arg(long)]
        scenario: String,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Our agent's heartbeat interval.
        #[arg(long, default_value_t = 200)]
        heartbeat_interval_ms: u64,
        /// Our agent's deadAfter.
        #[arg(long, default_value_t = 1000)]
        dead_after_ms: u64,
        #[arg(long, default_value_t = 7946)]
        heartbeat_port: u16,
        /// Run our agents with this SCHED_RR priority (chrt --rr).
        #[arg(long)]
        realtime_priority: Option<u8>,
        /// Extra argument for our agent (repeatable), e.g. a key-file flag.
        #[arg(long = "agent-arg", allow_hyphen_values = true)]
        agent_args: Vec<String>,
        #[arg(long, default_value_t = 2)]
        probe_interval_ms: u64,
        #[arg(long, default_value_t = 500)]
        warmup_ms: u64,
        #[arg(long, default_value_t = 7000)]
        port: u16,
        #[arg(long, default_value_t = 100)]
        loss_pct: u8,
        /// Keep one busy worker per core for the whole of every run (a loaded machine).
        #[arg(long)]
        cpu_load: bool,
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

/// Runs a lab command; errors go to stderr.
pub fn run(cmd: LabCommand) -> ExitCode {
    match execute(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ LabError::Unavailable { .. }) => {
            eprintln!("skipped: {e}");
            ExitCode::from(EXIT_UNAVAILABLE)
        }
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn needs_lab_prerequisites() -> Result<(), LabError> {
    topology::check_prerequisites().map_err(|reason| LabError::Unavailable {
        name: "lab".into(),
        reason,
    })
}

/// This binary: the lab runs it as the agent under test (and as the probe and echo).
fn own_executable() -> Result<std::path::PathBuf, LabError> {
    std::env::current_exe().map_err(|e| LabError::io("current executable", e))
}

fn execute(cmd: LabCommand) -> Result<(), LabError> {
    match cmd {
        LabCommand::Up { nodes } => {
            needs_lab_prerequisites()?;
            println!("{}", Lab::up(nodes)?.keep());
            Ok(())
        }
        LabCommand::Down { prefix } => Lab::attach(&prefix).down(),
        LabCommand::Probe {
            vip,
            port,
            interval_ms,
            duration_ms,
            iface,
            no_arp,
            samples,
        } => {
            let rec = probe::record(&ProbeConfig {
                vip,
                port,
                interval: Duration::from_millis(interval_ms),
                duration: Duration::from_millis(duration_ms),
                iface,
                arp: !no_arp,
                samples,
            })?;
            let summary = probe::analyze(&rec);
            let line = serde_json::to_string(&summary).map_err(|source| LabError::ProbeOutput {
                line: String::new(),
                source,
            })?;
            println!("{line}");
            Ok(())
        }
        LabCommand::Echo {
            port,
            name,
            duration_ms,
            http_port,
            broken_if,
        } => {
            let service = super::echo::Service {
                http_port,
                broken_if: broken_if.as_deref(),
            };
            super::echo::run(port, &name, Duration::from_millis(duration_ms), service).map(|_| ())
        }
        LabCommand::Idle {
            seconds,
            heartbeat_interval_ms,
            dead_after_ms,
            realtime_priority,
            cpu_load,
            work_dir,
        } => {
            needs_lab_prerequisites()?;
            let exe = own_executable()?;
            let timing = FailoverTiming {
                interval_ms: heartbeat_interval_ms,
                dead_after_ms,
                realtime_priority,
                ..FailoverTiming::default()
            };
            let work_dir = work_dir.unwrap_or_else(bench::default_work_dir);
            let report = super::idle::run(
                &exe,
                timing,
                Duration::from_secs(seconds),
                cpu_load,
                &work_dir,
            )?;
            let line = serde_json::to_string(&report).map_err(|source| LabError::ProbeOutput {
                line: String::new(),
                source,
            })?;
            println!("{line}");
            Ok(())
        }
        LabCommand::Torture {
            seed,
            duration,
            nodes,
            groups,
            heartbeat_interval_ms,
            dead_after_ms,
            probe_interval_ms,
            print_schedule,
            work_dir,
        } => {
            needs_lab_prerequisites()?;
            let exe = own_executable()?;
            let timing = FailoverTiming {
                interval_ms: heartbeat_interval_ms,
                dead_after_ms,
                ..FailoverTiming::default()
            };
            let duration = Duration::from_secs(duration);
            if print_schedule {
                let members = nodes.unwrap_or_else(|| torture::members_for_seed(seed));
                for fault in torture::schedule(seed, members, duration, &timing) {
                    eprintln!("{}", torture::describe(&fault, members));
                }
            }
            let outcome = torture::run(&torture::TortureOptions {
                seed,
                duration,
                members: nodes,
                groups,
                timing,
                probe_interval: Duration::from_millis(probe_interval_ms.max(1)),
                exe,
                work_dir: work_dir.unwrap_or_else(bench::default_work_dir),
            })?;
            eprintln!(
                "torture: {} members, {} groups, converged at the end: {}, findings: {}",
                outcome.members,
                groups,
                outcome.converged,
                serde_json::to_string(&outcome.findings).unwrap_or_default()
            );
            print_json(&outcome.report)?;
            if outcome.report.unsafe_run() {
                return Err(LabError::Invalid {
                    what: "torture run".into(),
                    detail: format!("seed {seed}: a safety counter is not zero"),
                });
            }
            if !outcome.converged {
                return Err(LabError::Timeout(format!(
                    "seed {seed}: every VIP held once after the faults"
                )));
            }
            Ok(())
        }
        LabCommand::Hostile {
            rate,
            heartbeat_interval_ms,
            dead_after_ms,
            work_dir,
        } => {
            needs_lab_prerequisites()?;
            let exe = own_executable()?;
            let timing = FailoverTiming {
                interval_ms: heartbeat_interval_ms,
                dead_after_ms,
                ..FailoverTiming::default()
            };
            let work_dir = work_dir.unwrap_or_else(bench::default_work_dir);
            print_json(&super::hostile::run(&exe, timing, rate, &work_dir)?)
        }
        LabCommand::Flood {
            key_file,
            rate,
            duration_ms,
            heartbeat_port,
        } => print_json(&super::hostile::flood_lab_members(
            &key_file,
            rate,
            Duration::from_millis(duration_ms),
            heartbeat_port,
        )?),
        LabCommand::Scrape { addr } => print_json(&super::hostile::scrape_drops(addr)?),
        LabCommand::Soak {
            minutes,
            members,
            groups,
            heartbeat_interval_ms,
            dead_after_ms,
            work_dir,
        } => {
            needs_lab_prerequisites()?;
            let exe = own_executable()?;
            let opts = super::soak::SoakOptions {
                minutes,
                members,
                groups,
                timing: FailoverTiming {
                    interval_ms: heartbeat_interval_ms,
                    dead_after_ms,
                    ..FailoverTiming::default()
                },
            };
            let work_dir = work_dir.unwrap_or_else(bench::default_work_dir);
            let report = super::soak::run(&exe, &opts, &work_dir)?;
            print_json(&report)
        }
        LabCommand::Bench {
            implementation,
            scenario,
            runs,
            heartbeat_interval_ms,
            dead_after_ms,
            heartbeat_port,
            realtime_priority,
            agent_args,
            probe_interval_ms,
            warmup_ms,
            port,
            loss_pct,
            cpu_load,
            work_dir,
        } => {
            needs_lab_prerequisites()?;
            let imp = Impl::parse(
                &implementation,
                FailoverTiming {
                    interval_ms: heartbeat_interval_ms,
                    dead_after_ms,
                    port: heartbeat_port,
                    realtime_priority,
                },
                agent_args,
            )?;
            let scenario: Scenario = scenario.parse()?;
            let exe = own_executable()?;
            let line = bench::run_bench(
                &imp,
                scenario,
                &BenchOptions {
                    exe,
                    runs,
                    probe_interval: Duration::from_millis(probe_interval_ms),
                    warmup: Duration::from_millis(warmup_ms),
                    port,
                    loss_pct,
                    work_dir: work_dir.unwrap_or_else(bench::default_work_dir),
                    cpu_load,
                },
            )?;
            println!("{}", super::stats::to_json_line(&line));
            Ok(())
        }
    }
}

/// Prints `value` as one JSON line.
fn print_json(value: &impl serde::Serialize) -> Result<(), LabError> {
    let line = serde_json::to_string(value).map_err(|source| LabError::ProbeOutput {
        line: String::new(),
        source,
    })?;
    println!("{line}");
    Ok(())
}
