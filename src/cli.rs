//! The `failover` command line: argument parsing, the subcommands that need no
//! cluster (`crd`, `validate`) and the start of the standalone `agent`.
//!
//! Owns the clap definitions so `main.rs` stays a thin shell; each subcommand is one
//! variant of [`Command`] with its own args struct, so new ones (`agent`, `operator`,
//! `simulate`, `demo`) slot in beside them. It must never hold domain logic: it reads
//! files, calls the library, and prints. The library never calls back into it (an
//! error's report for the logs is `telemetry::error_report`). `demo` and `lab` exist
//! only with the `lab` feature (the shipped image has neither).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::agent::{self, AgentError, AgentOptions};
use crate::keyfile::{KeyFileError, KeyFiles};
use crate::membership::Keyring;
use crate::telemetry::error_report;
use crate::{api, sim};

/// Kubernetes operator and node agent for sub-second, split-brain-free failover.
#[derive(Debug, Parser)]
#[command(name = "failover", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD.
    Crd(CrdArgs),
    /// Print the API reference (Markdown, generated from the CRD schemas), or write
    /// it to a file (docs/api.md in the repository).
    Docs(DocsArgs),
    /// Check manifests (one FailoverCluster plus its ResourceGroups per file) and
    /// print every problem; exits with status 1 if there is any.
    Validate(ValidateArgs),
    /// Run the deterministic simulator: virtual nodes driven through crashes,
    /// partitions, loss, pauses, clock drift and config changes, checking safety,
    /// liveness and stability after every step. Ends with one JSON line; exits with
    /// status 1 (after printing each failing seed and its shrunk trace) on a violation.
    Simulate(SimulateArgs),
    /// The demo: a three-node cluster of network namespaces on this machine; kills
    /// the VIP's owner and prints the failover timeline and the outage a client saw.
    /// Needs root and iproute2; removes everything it created.
    #[cfg(feature = "lab")]
    Demo(DemoArgs),
    /// Network-namespace lab: topology, probe, echo responder, failover benchmarks
    /// (needs root and iproute2).
    #[cfg(feature = "lab")]
    #[command(subcommand)]
    Lab(crate::lab::cli::LabCommand),
    /// Run the node agent of one member: heartbeats, ownership decisions, VIPs.
    /// Stops gracefully on SIGTERM/SIGINT (hands its groups over first) and reloads
    /// its configuration on SIGHUP or when the file changes.
    Agent(AgentArgs),
    /// Run the Kubernetes operator: leader-elected controllers for FailoverCluster and
    /// ResourceGroup that render the agents' configuration, Secret, DaemonSet, RBAC and
    /// Leases and aggregate the agents' reports into status. Stops on SIGTERM.
    Operator(OperatorArgs),
    /// Run the witness of a standalone two-node cluster (`quorum: witness`,
    /// `spec.witness`): the third vote, which breaks the tie when the members lose
    /// each other. It votes and holds nothing. Stops on SIGTERM/SIGINT.
    Witness(WitnessArgs),
    /// The admin's verbs against a cluster: status, explain, move, pause, resume,
    /// clear, timeline. The same binary installed as `kubectl-failover` is the
    /// kubectl plugin `kubectl failover VERB` (docs/kubectl-plugin.md).
    Ctl(crate::plugin::CtlArgs),
    /// A standalone cluster's configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `failover config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE and send it to every member it lists (standalone agents with a
    /// heartbeat key, over TCP on their heartbeat addresses and port), signed with
    /// the cluster's key; each member writes it to its configuration file and
    /// applies it. Prints one line per member; exits with status 1 unless every
    /// member applied it or already ran it.
    Push(PushArgs),
}

/// Arguments of `failover config push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The configuration file: one FailoverCluster (every member with an
    /// `address`) and its ResourceGroups.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The cluster's heartbeat key file (the one the agents use).
    #[arg(long, value_name = "PATH")]
    pub key_file: PathBuf,
    /// The previous key during a rotation: replies signed with it are accepted too.
    #[arg(long, value_name = "PATH")]
    pub previous_key_file: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = crate::plugin::Format::Table)]
    pub output: crate::plugin::Format,
}

/// The command line of the binary invoked as `kubectl-failover` (kubectl runs
/// `kubectl-failover ARGS` for `kubectl failover ARGS`): the verbs of `failover ctl`.
#[derive(Debug, Parser)]
#[command(name = "kubectl failover", version)]
struct KubectlPlugin {
    #[command(flatten)]
    args: crate::plugin::CtlArgs,
}

/// The file name the binary has as a kubectl plugin.
pub const PLUGIN_FILE_NAME: &str = "kubectl-failover";

impl Cli {
    /// Parses `args` (the first is the program): as the kubectl plugin's verbs when
    /// the program's file name is [`PLUGIN_FILE_NAME`], else as `failover`'s
    /// subcommands.
    pub fn try_parse_invocation<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let as_plugin = args
            .first()
            .and_then(|program| Path::new(program).file_name())
            .is_some_and(|name| name == PLUGIN_FILE_NAME);
        if as_plugin {
            let plugin = KubectlPlugin::try_parse_from(args)?;
            Ok(Self {
                command: Command::Ctl(plugin.args),
            })
        } else {
            Self::try_parse_from(args)
        }
    }
}

/// Arguments of `failover operator`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// Container image of the agent DaemonSet (normally the operator's own image).
    #[arg(long, env = "FAILOVER_AGENT_IMAGE", value_name = "IMAGE")]
    pub agent_image: String,
    /// Pull policy of the agent image.
    #[arg(long, env = "FAILOVER_AGENT_IMAGE_PULL_POLICY", default_value = "IfNotPresent",
          value_parser = ["Always", "IfNotPresent", "Never"])]
    pub agent_image_pull_policy: String,
    /// Kubeconfig file (default: in-cluster configuration, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the leader Lease `failover-operator-leader` (default: the pod's
    /// namespace, else the kubeconfig's).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "FAILOVER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Identity of this replica in the leader Lease (default: hostname and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Leader Lease duration in seconds (renewed every third of it).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    pub lease_duration_secs: u64,
    /// Timeout of every API request, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub api_timeout_secs: u64,
    /// Status refresh from the agents' Leases without other changes, in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub resync_secs: u64,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Log format on stderr.
    #[arg(long, value_enum, env = "FAILOVER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Requests and limits of the agent containers, as a JSON ResourceRequirements
    /// (e.g. '{"requests":{"cpu":"100m"}}'); unset = 50m CPU / 32Mi requested, 128Mi
    /// memory limit, no CPU limit (throttling would delay heartbeats).
    #[arg(long, env = "FAILOVER_AGENT_RESOURCES", value_parser = parse_resources)]
    pub agent_resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// SCHED_RR priority of the agents (1-99; the DaemonSet then adds CAP_SYS_NICE);
    /// 0 runs them at normal priority. Busy cores delay a normal-priority agent's
    /// heartbeats enough to move groups without a fault (docs/comparison.md).
    #[arg(long, env = "FAILOVER_AGENT_REALTIME_PRIORITY", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=99))]
    pub agent_realtime_priority: u8,
}

fn parse_resources(text: &str) -> Result<k8s_openapi::api::core::v1::ResourceRequirements, String> {
    serde_json::from_str(text).map_err(|e| format!("not a JSON ResourceRequirements: {e}"))
}

/// Arguments of `failover demo`.
#[cfg(feature = "lab")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Heartbeat interval in milliseconds (the product default is 200).
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// deadAfter in milliseconds (the product default is 1000).
    #[arg(long, default_value_t = 1000)]
    pub dead_after_ms: u64,
}

/// Arguments of `failover simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of runs (seeds `seed`, `seed+1`, …).
    #[arg(long, default_value_t = 100)]
    pub runs: u64,
    /// Nodes per run (2 uses witness quorum, more use majority).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub nodes: u8,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Resource groups per run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub groups: u16,
    /// Fault episodes per run.
    #[arg(long, default_value_t = 6)]
    pub faults: usize,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// deadAfter in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub dead_after_ms: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print every decision of every node to stderr (use with --runs 1 to follow
    /// one seed).
    #[arg(long)]
    pub trace: bool,
}

/// Arguments of `failover agent`: exactly one of `--standalone FILE` (without
/// Kubernetes) or `--cluster NAME` (configuration and key from the API, ownership recorded in it).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["standalone", "cluster"])))]
pub struct AgentArgs {
    /// Run without Kubernetes from this YAML file: one FailoverCluster (every member
    /// with an `address`) and its ResourceGroups, as `kubectl apply -f` would take
    /// them.
    #[arg(long, value_name = "FILE")]
    pub standalone: Option<PathBuf>,
    /// Run in Kubernetes for this FailoverCluster: watch its ClusterConfig ConfigMap
    /// and heartbeat Secret, record ownership in its group Leases.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["key_file", "insecure_no_auth"])]
    pub cluster: Option<String>,
    /// The cluster's namespace (default: the kubeconfig's or the pod's namespace).
    #[arg(long, value_name = "NS", conflicts_with = "standalone")]
    pub namespace: Option<String>,
    /// Kubeconfig to use (default: in-cluster, then $KUBECONFIG / ~/.kube/config).
    #[arg(long, value_name = "PATH", conflicts_with = "standalone")]
    pub kubeconfig: Option<PathBuf>,
    /// This member's node name (spec.members[].node); in a pod the downward API
    /// sets NODE_NAME.
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node: String,
    /// The heartbeat key (--key-file, --previous-key-file, --insecure-no-auth).
    /// Standalone only: in Kubernetes the key comes from the cluster's Secret.
    /// SIGHUP reads the key files again: that is how a key is rotated without a
    /// restart.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Address to serve /metrics, /healthz and /readyz on; "" disables.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9477")]
    pub metrics_addr: String,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Run the agent at this SCHED_RR real-time priority (1-99), so that busy cores
    /// do not delay its heartbeats and timers; needs CAP_SYS_NICE. When the kernel
    /// refuses, the agent logs an error and runs at normal priority.
    #[arg(long, value_name = "PRIORITY", env = "FAILOVER_REALTIME_PRIORITY",
          value_parser = clap::value_parser!(u8).range(1..=99))]
    pub realtime_priority: Option<u8>,
}

/// Arguments of `failover witness`.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// UDP address to answer on, e.g. 192.0.2.10:7707 (the agents send to
    /// spec.witness.address and spec.witness.port, default the heartbeat port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// The cluster this witness votes in, as NAMESPACE/NAME of its FailoverCluster
    /// (a NAME alone means default/NAME, as for a document without a namespace).
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Address to serve /metrics, /healthz and /readyz on; unset: none.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The heartbeat key flags of the standalone agent and the witness.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// File holding the cluster's heartbeat HMAC key (at least 16 bytes, the same on
    /// every member and the witness; trailing whitespace is ignored). The agent
    /// (standalone only: in Kubernetes the key comes from the cluster's Secret) and
    /// the witness read it again on SIGHUP, a key rotation.
    #[arg(long, value_name = "PATH", conflicts_with = "insecure_no_auth")]
    pub key_file: Option<PathBuf>,
    /// The previous key during a rotation: datagrams signed with it are accepted too.
    #[arg(long, value_name = "PATH", requires = "key_file")]
    pub previous_key_file: Option<PathBuf>,
    /// Run without authentication: anyone who can send UDP to the port can take
    /// part in ownership decisions. For labs only.
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The log format the command asks for.
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Agent(args) => args.log_format,
            Command::Operator(args) => args.log_format,
            Command::Witness(args) => args.log_format,
            _ => LogFormat::Text,
        }
    }
}

/// Arguments of `failover crd`.
#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Write `<plural>.failover.dev.yaml` files into this directory instead of
    /// printing a multi-document YAML stream.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Arguments of `failover docs`.
#[derive(Debug, Args)]
pub struct DocsArgs {
    /// Write the reference to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `failover validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also check what the standalone agent needs (an address for every member).
    #[arg(long)]
    pub standalone: bool,
}

/// Why a command could not run (as opposed to finding problems in its input).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The demo could not run or did not recover.
    #[error("demo failed")]
    #[cfg(feature = "lab")]
    Demo(#[source] crate::lab::LabError),
    /// Rendering the CRDs failed.
    #[error(transparent)]
    Crd(#[from] api::CrdError),
    /// The operator stopped with an error.
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorError),
    /// The agent was started without a key and without opting out.
    #[error(
        "no heartbeat key: pass --key-file PATH (at least 16 bytes, the same file on every member) or, for a lab, --insecure-no-auth"
    )]
    NoKey,
    /// A key file cannot be read or holds an unusable key.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// `--metrics-addr` is not an address.
    #[error("--metrics-addr {0:?}: expected IP:PORT, or \"\" to disable")]
    MetricsAddr(String),
    /// The witness could not start.
    #[error("witness")]
    Witness(#[from] crate::witness::server::WitnessError),
    /// The agent could not start or its runtime failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The agent's Kubernetes mode could not start or stopped on an error.
    #[error("agent (Kubernetes mode)")]
    KubeAgent(#[from] agent::kube::KubeError),
    /// The async runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A `ctl` verb (the kubectl plugin) failed.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    /// Writing a file or to stdout failed.
    #[error("cannot write {path}")]
    Write {
        /// What was being written.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// What the process should exit with after a command that ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Everything was fine.
    Success,
    /// The command ran and found problems in its input.
    ProblemsFound,
    /// The command chose its own exit status (the lab's "skipped" is 3).
    Exit(std::process::ExitCode),
}

/// Runs a parsed command line, printing to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Crd(args) => crd(&args, out),
        Command::Docs(args) => docs(&args, out),
        Command::Validate(args) => validate(&args, out),
        Command::Simulate(args) => simulate(&args, out),
        #[cfg(feature = "lab")]
        Command::Lab(cmd) => Ok(Outcome::Exit(crate::lab::cli::run(cmd))),
        #[cfg(feature = "lab")]
        Command::Demo(args) => demo(&args),
        Command::Agent(args) => run_agent(args),
        Command::Operator(args) => operator(args),
        Command::Witness(args) => witness(args),
        Command::Ctl(args) => {
            let keys = args
                .key_file
                .clone()
                .map(|current| {
                    KeyFiles {
                        current,
                        previous: args.previous_key_file.clone(),
                    }
                    .read()
                })
                .transpose()?;
            let printed = crate::plugin::run(args, keys.as_ref())?;
            print(out, printed)
        }
        Command::Config(ConfigCommand::Push(args)) => {
            let keys = KeyFiles {
                current: args.key_file.clone(),
                previous: args.previous_key_file.clone(),
            }
            .read()?;
            let printed = crate::plugin::config_push(&args.file, &keys, args.output)?;
            print(out, printed)
        }
    }
}

/// Writes what a verb printed; status 1 when it did not do all it was asked.
fn print(out: &mut dyn Write, printed: crate::plugin::Printout) -> Result<Outcome, CliError> {
    out.write_all(printed.text.as_bytes())
        .map_err(write_err("stdout"))?;
    Ok(if printed.complete {
        Outcome::Success
    } else {
        Outcome::ProblemsFound
    })
}

/// The metrics address argument; "" disables.
fn metrics_addr(text: &str) -> Result<Option<std::net::SocketAddr>, CliError> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| CliError::MetricsAddr(text.to_owned())),
    }
}

impl KeyArgs {
    /// Reads the key files into a keyring, or the insecure public keyring when the
    /// user opted out; no key and no opt-out is an error.
    fn keyring(&self) -> Result<Keyring, CliError> {
        match (self.key_files(), self.insecure_no_auth) {
            (Some(files), _) => Ok(files.read()?),
            (None, true) => {
                tracing::warn!("heartbeat authentication disabled (--insecure-no-auth)");
                Ok(Keyring::insecure_public())
            }
            (None, false) => Err(CliError::NoKey),
        }
    }

    /// The key files to read again on SIGHUP; `None` without `--key-file`.
    fn key_files(&self) -> Option<KeyFiles> {
        self.key_file.clone().map(|current| KeyFiles {
            current,
            previous: self.previous_key_file.clone(),
        })
    }
}

/// Builds the standalone agent's options (keys, metrics address) from its arguments.
fn agent_options(args: AgentArgs) -> Result<AgentOptions, CliError> {
    let keys = args.keys.keyring()?;
    let metrics_addr = metrics_addr(&args.metrics_addr)?;
    let key_files = args.keys.key_files();
    Ok(AgentOptions {
        config_path: args.standalone.unwrap_or_default(),
        node: args.node,
        keys,
        key_files,
        metrics_addr,
    })
}

fn run_agent(args: AgentArgs) -> Result<Outcome, CliError> {
    // Before the runtime exists: the threads it creates inherit the policy.
    if let Some(priority) = args.realtime_priority {
        match agent::realtime::run_realtime(priority) {
            Ok(()) => tracing::info!(priority, "running at SCHED_RR real-time priority"),
            Err(e) => tracing::error!(
                error = %error_report(&e),
                "running at normal priority: heartbeats may be late on busy cores"
            ),
        }
    }
    // One thread is plenty for one socket, a few timers and the API calls, and
    // keeps RSS low.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    if let Some(cluster) = args.cluster.clone() {
        let options = agent::kube::KubeOptions {
            cluster,
            namespace: args.namespace.clone(),
            node: args.node.clone(),
            kubeconfig: args.kubeconfig.clone(),
            metrics_addr: metrics_addr(&args.metrics_addr)?,
        };
        runtime.block_on(agent::kube::run(options))?;
    } else {
        let options = agent_options(args)?;
        runtime.block_on(agent::run(options))?;
    }
    Ok(Outcome::Success)
}

/// The cluster id the agents put in their datagrams (`namespace/name`), from
/// `--cluster`: a bare name is in the default namespace, as a document without one.
fn cluster_id(cluster: &str) -> String {
    if cluster.contains('/') {
        cluster.to_owned()
    } else {
        format!("{}/{cluster}", crate::contract::model::DEFAULT_NAMESPACE)
    }
}

fn witness(args: WitnessArgs) -> Result<Outcome, CliError> {
    let options = crate::witness::server::WitnessOptions {
        listen: args.listen,
        cluster: cluster_id(&args.cluster),
        keys: args.keys.keyring()?,
        key_files: args.keys.key_files(),
        metrics_addr: args.metrics,
    };
    // One socket and a few timers: one thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(crate::witness::server::run(options))?;
    Ok(Outcome::Success)
}

fn operator(args: OperatorArgs) -> Result<Outcome, CliError> {
    use std::time::Duration;
    let identity = args.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let options = crate::operator::Options {
        kubeconfig: args.kubeconfig,
        namespace: args.namespace,
        watch_namespace: args.watch_namespace,
        identity,
        lease_duration: Duration::from_secs(args.lease_duration_secs),
        metrics_addr: args.metrics_addr,
        settings: crate::operator::Settings {
            agent: crate::operator::AgentSettings {
                image: args.agent_image,
                pull_policy: args.agent_image_pull_policy,
                resources: args.agent_resources,
                realtime_priority: args.agent_realtime_priority,
            },
            api_timeout: Duration::from_secs(args.api_timeout_secs),
            resync: Duration::from_secs(args.resync_secs),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(crate::operator::run(options))?;
    Ok(Outcome::Success)
}

fn write_err(path: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::Write { path, source }
}

fn docs(args: &DocsArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let text = api::docs::api_reference();
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(write_err(path.display().to_string()))?,
        None => out
            .write_all(text.as_bytes())
            .map_err(write_err("stdout"))?,
    }
    Ok(Outcome::Success)
}

fn crd(args: &CrdArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let rendered = api::crds_yaml()?;
    match &args.out_dir {
        None => {
            for (_, yaml) in &rendered {
                write!(out, "---\n{yaml}").map_err(write_err("stdout"))?;
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(write_err(dir.display().to_string()))?;
            for (crd, yaml) in &rendered {
                let path = dir.join(api::crd_file_name(crd));
                std::fs::write(&path, yaml).map_err(write_err(path.display().to_string()))?;
                writeln!(out, "wrote {}", path.display()).map_err(write_err("stdout"))?;
            }
        }
    }
    Ok(Outcome::Success)
}

#[cfg(feature = "lab")]
fn demo(args: &DemoArgs) -> Result<Outcome, CliError> {
    let exe = std::env::current_exe().map_err(|source| {
        CliError::Demo(crate::lab::LabError::Io {
            what: "the path of this executable".into(),
            source,
        })
    })?;
    let options = crate::lab::demo::DemoOptions {
        exe,
        timing: crate::lab::impls::FailoverTiming {
            interval_ms: args.interval_ms,
            dead_after_ms: args.dead_after_ms,
            ..Default::default()
        },
        probe_interval: std::time::Duration::from_millis(2),
        echo_port: 7000,
    };
    crate::lab::demo::run(&options).map_err(CliError::Demo)?;
    Ok(Outcome::Success)
}

fn simulate(args: &SimulateArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    use std::time::Duration;
    let mut config = sim::SimConfig::new(usize::from(args.nodes));
    config.groups = usize::from(args.groups);
    config.faults = args.faults;
    config.interval = Duration::from_millis(args.interval_ms.max(1));
    config.dead_after = Duration::from_millis(args.dead_after_ms.max(args.interval_ms + 1));
    config.address_lifetime =
        Duration::from_secs(config.dead_after.as_secs_f64().ceil().max(1.0) as u64);
    config.trace = args.trace;
    let (summary, failed) = sim::simulate_many(&config, args.runs, args.seed, args.threads);
    for f in &failed {
        write!(out, "{f}").map_err(write_err("stdout"))?;
    }
    writeln!(out, "{}", summary.json(&config)).map_err(write_err("stdout"))?;
    Ok(if failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::ProblemsFound
    })
}

/// Checks one file; returns the lines to print, empty when it is valid.
fn check_file(path: &Path, standalone: bool) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    match api::load_documents(&text) {
        Err(e) => vec![error_report(&e)],
        Ok((cluster, groups)) => {
            let mut problems = api::validate_config(&cluster, &groups);
            if standalone {
                problems.extend(api::validate_standalone(&cluster));
            }
            problems.iter().map(ToString::to_string).collect()
        }
    }
}

fn validate(args: &ValidateArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let mut outcome = Outcome::Success;
    for path in &args.files {
        let problems = check_file(path, args.standalone);
        let shown = path.display();
        if problems.is_empty() {
            writeln!(out, "{shown}: ok").map_err(write_err("stdout"))?;
        } else {
            outcome = Outcome::ProblemsFound;
            for problem in problems {
                writeln!(out, "{shown}: {problem}").map_err(write_err("stdout"))?;
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (Outcome, String) {
        let cli = Cli::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        let outcome = run(cli, &mut out).unwrap();
        (outcome, String::from_utf8(out).unwrap())
    }

    #[test]
    fn validate_reports_problems_with_exit_status() {
        let dir = std::env::temp_dir().join(format!("failover-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        let bad = dir.join("bad.yaml");
        let cluster = "apiVersion: failover.dev/v1alpha1\nkind: FailoverCluster\nmetadata: {name: c}\nspec:\n  members: [{node: a}, {node: b}, {node: c}]\n";
        std::fs::write(&good, cluster).unwrap();
        std::fs::write(&bad, cluster.replace("node: b", "node: a")).unwrap();

        let (outcome, text) = run_args(&["failover", "validate", good.to_str().unwrap()]);
        assert_eq!(outcome, Outcome::Success);
        assert!(text.ends_with("good.yaml: ok\n"), "{text}");

        let (outcome, text) = run_args(&[
            "failover",
            "validate",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            dir.join("missing.yaml").to_str().unwrap(),
        ]);
        assert_eq!(outcome, Outcome::ProblemsFound);
        assert!(
            text.contains("spec.members[1].node: duplicate member \"a\""),
            "{text}"
        );
        assert!(text.contains("missing.yaml: cannot read"), "{text}");

        let (outcome, text) = run_args(&[
            "failover",
            "validate",
            "--standalone",
            good.to_str().unwrap(),
        ]);
        assert_eq!(outcome, Outcome::ProblemsFound);
        assert!(
            text.contains("FailoverCluster/c: spec.members[1].address: required when the agent runs standalone"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn agent_args(extra: &[&str]) -> Result<AgentArgs, clap::Error> {
        let mut args = vec![
            "failover",
            "agent",
            "--standalone",
            "c.yaml",
            "--node",
            "n1",
        ];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args)?.command {
            Command::Agent(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn agent_needs_a_key_or_an_explicit_opt_out() {
        let err = agent_options(agent_args(&[]).unwrap()).unwrap_err();
        assert!(matches!(err, CliError::NoKey));
        assert!(err.to_string().contains("--key-file PATH"), "{err}");
        assert!(err.to_string().contains("--insecure-no-auth"), "{err}");

        let options = agent_options(agent_args(&["--insecure-no-auth"]).unwrap()).unwrap();
        assert_eq!(options.node, "n1");
        assert_eq!(options.config_path, PathBuf::from("c.yaml"));
        assert_eq!(options.metrics_addr, Some("0.0.0.0:9477".parse().unwrap()));

        // Both at once is a contradiction, not a choice.
        assert!(agent_args(&["--insecure-no-auth", "--key-file", "k"]).is_err());
        assert!(agent_args(&["--previous-key-file", "k"]).is_err());
        // Exactly one mode: --standalone or --cluster.
        assert!(Cli::try_parse_from(["failover", "agent", "--node", "n1"]).is_err());
        assert!(agent_args(&["--cluster", "c"]).is_err());
        // Kubernetes mode takes no key files: the key comes from the Secret.
        let kube = |extra: &[&str]| {
            let mut args = vec!["failover", "agent", "--cluster", "c", "--node", "n1"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Agent(args) => args,
                _ => unreachable!(),
            })
        };
        assert!(kube(&["--key-file", "k"]).is_err());
        assert!(kube(&["--insecure-no-auth"]).is_err());
        let args = kube(&[
            "--namespace",
            "ns",
            "--kubeconfig",
            "/k",
            "--metrics-addr",
            "",
        ])
        .unwrap();
        assert_eq!(args.cluster.as_deref(), Some("c"));
        assert_eq!(args.namespace.as_deref(), Some("ns"));
        assert_eq!(args.kubeconfig, Some(PathBuf::from("/k")));
        // --namespace and --kubeconfig belong to the Kubernetes mode.
        assert!(agent_args(&["--insecure-no-auth", "--namespace", "ns"]).is_err());
    }

    #[test]
    fn witness_arguments() {
        let parse = |extra: &[&str]| -> Result<WitnessArgs, clap::Error> {
            let mut args = vec!["failover", "witness", "--listen", "127.0.0.1:7707"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args)?.command {
                Command::Witness(args) => Ok(args),
                other => panic!("parsed as {other:?}"),
            }
        };
        let args = parse(&["--cluster", "pair", "--insecure-no-auth"]).unwrap();
        assert_eq!(cluster_id(&args.cluster), "default/pair");
        assert_eq!(cluster_id("ns/pair"), "ns/pair");
        assert_eq!(args.metrics, None);
        assert!(args.keys.keyring().is_ok());
        let args = parse(&["--cluster", "pair", "--metrics", "127.0.0.1:9478"]).unwrap();
        assert!(args.metrics.is_some());
        // No key and no opt-out: refused, as for the agent.
        assert!(matches!(args.keys.keyring(), Err(CliError::NoKey)));
        assert!(
            parse(&["--insecure-no-auth"]).is_err(),
            "--cluster is required"
        );
        assert!(parse(&["--cluster", "c", "--key-file", "k", "--insecure-no-auth"]).is_err());
    }

    #[test]
    fn agent_key_files_and_metrics_address() {
        let dir = std::env::temp_dir().join(format!("failover-cli-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, short) = (dir.join("good"), dir.join("short"));
        std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
        std::fs::write(&short, "0123456789\n").unwrap();
        let (good, short) = (good.to_str().unwrap(), short.to_str().unwrap());

        let options =
            agent_options(agent_args(&["--key-file", good, "--metrics-addr", ""]).unwrap())
                .unwrap();
        assert_eq!(options.metrics_addr, None);
        assert!(
            agent_options(agent_args(&["--key-file", good, "--previous-key-file", good]).unwrap())
                .is_ok()
        );
        // Ten bytes once the newline is trimmed: too short.
        let err = agent_options(agent_args(&["--key-file", short]).unwrap()).unwrap_err();
        assert!(
            matches!(err, CliError::KeyFile(KeyFileError::Key { .. })),
            "{err}"
        );
        assert!(
            error_report(&err).contains("10 bytes"),
            "{}",
            error_report(&err)
        );
        let err =
            agent_options(agent_args(&["--key-file", good, "--previous-key-file", short]).unwrap())
                .unwrap_err();
        assert!(
            matches!(err, CliError::KeyFile(KeyFileError::Key { .. })),
            "{err}"
        );
        let missing = dir.join("missing");
        let err = agent_options(agent_args(&["--key-file", missing.to_str().unwrap()]).unwrap())
            .unwrap_err();
        assert!(
            matches!(err, CliError::KeyFile(KeyFileError::Read { .. })),
            "{err}"
        );
        let err = agent_options(
            agent_args(&["--insecure-no-auth", "--metrics-addr", "localhost"]).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, CliError::MetricsAddr(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
