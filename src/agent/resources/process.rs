//! Child processes the agent runs: a supervised `process` resource (started,
//! watched, stopped with SIGTERM then SIGKILL) and bounded one-shot commands (exec
//! health checks, transition hooks) that are killed when they overrun their time.
//!
//! Owns every fork the agent does and the only unsafe code of the resource drivers:
//! the `prctl(PR_SET_PDEATHSIG)` in the child before `exec` and the `kill(2)` of a
//! child's process group. Must never decide when a process should run (that is the
//! caller's job) and must never leave a child serving after the agent is gone:
//! - every child is the leader of its own process group, and stopping or killing
//!   it signals the whole group, so the shell pipelines and helpers it started go too;
//! - every child is spawned with `kill_on_drop`, and dropping a handle kills the group;
//! - every child asks the kernel for SIGKILL when the agent dies (PR_SET_PDEATHSIG),
//!   so an agent killed with SIGKILL, which runs no cleanup, takes its children along.
//!   The kernel sends that signal when the *thread* that forked the child exits, so
//!   children must be started from the agent's async runtime (whose worker threads
//!   live as long as the agent), never from `spawn_blocking`, whose threads retire
//!   when idle. Only the direct child gets that signal: helpers it started itself
//!   outlive a SIGKILLed agent unless they ask for a death signal of their own
//!   (stopping and dropping signal the whole group, which covers them while the
//!   agent lives).
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::telemetry::error_report;

/// Why a child process could not be started or watched.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The command line is empty.
    #[error("empty command")]
    EmptyCommand,
    /// `fork`/`exec` failed (missing program, no permission, bad working directory).
    #[error("cannot start {program:?}")]
    Spawn {
        /// The program that was to run.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Waiting for the child failed.
    #[error("cannot wait for process {pid}")]
    Wait {
        /// The child's process id.
        pid: u32,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// What to run: program and arguments, extra environment, working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments (`argv`); the program is looked up in `PATH`.
    pub argv: Vec<String>,
    /// Variables set on top of the agent's own environment, which the child inherits.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` keeps the agent's.
    pub working_dir: Option<PathBuf>,
}

impl CommandSpec {
    /// A command with no extra environment, run in the agent's working directory.
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            working_dir: None,
        }
    }

    /// The program, for logs.
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }
}

/// Where a child's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The agent's own stdout and stderr (services and hooks: their lines end up in
    /// the agent's log stream).
    Inherit,
    /// Nowhere (health checks: they run every interval).
    Discard,
}

/// How a child ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// Reads a wait status (exactly one of code and signal is set on Linux).
    pub fn from_status(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            // Stopped/continued statuses are not reported by wait() without
            // WUNTRACED; treat the impossible case as a failure code.
            (None, None) => Exit::Code(-1),
        }
    }

    /// Whether the child exited with code 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(libc::SIGKILL) => write!(f, "killed by SIGKILL"),
            Exit::Signal(libc::SIGTERM) => write!(f, "killed by SIGTERM"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// How [`Supervised::stop`] ended the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It had already exited before the stop.
    AlreadyExited(Exit),
    /// It exited within the grace period after SIGTERM.
    Terminated(Exit),
    /// It outlived the grace period and was killed with SIGKILL.
    Killed,
}

/// Builds the tokio command: own process group, death signal, kill on drop.
fn command(spec: &CommandSpec, output: Output) -> Result<Command, ProcessError> {
    let (program, args) = spec.argv.split_first().ok_or(ProcessError::EmptyCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(
            spec.env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        )
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.working_dir {
        cmd.current_dir(dir);
    }
    if output == Output::Discard {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    // SAFETY: the agent's pid is read before the fork; the closure runs in the child
    // between fork and exec and calls only prctl and getppid, which are
    // async-signal-safe, and allocates nothing.
    let agent = std::process::id();
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The agent may have died between fork and prctl: then nobody would send
            // the signal, so do not start at all. (No allocation here: the error is
            // a plain errno.)
            if u32::try_from(libc::getppid()).ok() != Some(agent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    Ok(cmd)
}

fn spawn(spec: &CommandSpec, output: Output) -> Result<(Child, u32), ProcessError> {
    let spawn_error = |source| ProcessError::Spawn {
        program: spec.program().to_owned(),
        source,
    };
    let child = command(spec, output)?.spawn().map_err(spawn_error)?;
    // A freshly spawned, not yet awaited child always has an id.
    let pid = child
        .id()
        .ok_or_else(|| spawn_error(io::Error::other("no process id")))?;
    Ok((child, pid))
}

/// Sends `signal` to the process group led by `child`, but only while the leader is
/// not reaped: an unreaped leader (even a zombie) holds its pid, so the group id
/// cannot have been reused by an unrelated process.
fn signal_group(child: &mut Child, pid: u32, signal: libc::c_int) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; it has no memory
    // effects. The group is ours (see above).
    if unsafe { libc::kill(-pgid, signal) } != 0 {
        let error = io::Error::last_os_error();
        // ESRCH: the whole group is gone already, which is what we want.
        if error.raw_os_error() != Some(libc::ESRCH) {
            warn!(pid, signal, %error, "cannot signal process group");
        }
    }
}

/// A long-running child the agent watches and stops: the `process` resource.
///
/// Dropping it kills the process group with SIGKILL.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    pid: u32,
    program: String,
    exit: Option<Exit>,
}

impl Supervised {
    /// Starts `spec` with its output going to the agent's own stdout and stderr.
    pub fn start(spec: &CommandSpec) -> Result<Self, ProcessError> {
        let (child, pid) = spawn(spec, Output::Inherit)?;
        debug!(pid, program = spec.program(), "process started");
        Ok(Self {
            child,
            pid,
            program: spec.program().to_owned(),
            exit: None,
        })
    }

    /// The child's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until the child exits and says how. Cancel-safe: dropping the future
    /// leaves the child running and watched; after the exit it returns the same
    /// answer again.
    pub async fn exited(&mut self) -> Result<Exit, ProcessError> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self
            .child
            .wait()
            .await
            .map_err(|source| ProcessError::Wait {
                pid: self.pid,
                source,
            })?;
        let exit = Exit::from_status(status);
        self.exit = Some(exit);
        Ok(exit)
    }

    /// Stops the process: SIGTERM to its group, then SIGKILL to the group if it
    /// has not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) -> Result<Stopped, ProcessError> {
        if let Some(exit) = self.exit {
            return Ok(Stopped::AlreadyExited(exit));
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(Stopped::AlreadyExited(Exit::from_status(status)));
        }
        signal_group(&mut self.child, self.pid, libc::SIGTERM);
        if let Ok(exit) = tokio::time::timeout(grace, self.exited()).await {
            let exit = exit?;
            debug!(pid = self.pid, program = %self.program, %exit, "process stopped");
            return Ok(Stopped::Terminated(exit));
        }
        signal_group(&mut self.child, self.pid, libc::SIGKILL);
        self.exited().await?;
        warn!(pid = self.pid, program = %self.program, ?grace, "process ignored SIGTERM; killed");
        Ok(Stopped::Killed)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        signal_group(&mut self.child, self.pid, libc::SIGKILL);
    }
}

/// A supervised process watched by a task of its own: the task reports an exit the
/// agent did not ask for, and stops the process when asked. Dropping the handle
/// (a stop step that overran its timeout, an agent that exits) kills the process
/// group.
#[derive(Debug)]
pub struct Watched {
    pid: u32,
    stop: Option<oneshot::Sender<StopRequest>>,
    task: JoinHandle<()>,
}

/// A stop request: the grace period and where the outcome goes.
type StopRequest = (Duration, oneshot::Sender<Result<Stopped, ProcessError>>);

impl Drop for Watched {
    fn drop(&mut self) {
        // Aborting the task drops the Supervised it owns, which kills the group.
        self.task.abort();
    }
}

impl Watched {
    /// Starts `spec` (from the calling task: see the module's note on the death
    /// signal) and watches it; an exit before a stop sends `exited(..)` to
    /// `events`, with the exit or the error of the wait.
    pub fn start<E: Send + 'static>(
        spec: &CommandSpec,
        events: mpsc::Sender<E>,
        exited: impl FnOnce(Result<Exit, String>) -> E + Send + 'static,
    ) -> Result<Self, ProcessError> {
        let mut process = Supervised::start(spec)?;
        let pid = process.pid();
        let (stop, mut stop_requested) = oneshot::channel::<StopRequest>();
        let task = tokio::spawn(async move {
            let request = tokio::select! {
                request = &mut stop_requested => request,
                exit = process.exited() => {
                    let exit = exit.map_err(|e| error_report(&e));
                    if events.send(exited(exit)).await.is_err() {
                        return;
                    }
                    // The agent stops the resource next; answer that stop.
                    (&mut stop_requested).await
                }
            };
            if let Ok((grace, reply)) = request {
                // The requester may be gone (its step timed out): nothing to tell.
                let _ = reply.send(process.stop(grace).await);
            }
        });
        Ok(Self {
            pid,
            stop: Some(stop),
            task,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the process: SIGTERM, then SIGKILL after `grace` (see
    /// [`Supervised::stop`]).
    pub async fn stop(mut self, grace: Duration) -> Result<Stopped, ProcessError> {
        let (reply, outcome) = oneshot::channel();
        let gone = || ProcessError::Wait {
            pid: self.pid,
            source: io::Error::other("the watcher task is gone"),
        };
        let stop = self.stop.take().ok_or_else(gone)?;
        stop.send((grace, reply)).map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

/// How a bounded one-shot command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// It ended by itself within its time.
    Exited(Exit),
    /// It overran its time; its process group was killed.
    TimedOut,
}

/// Runs `spec` to completion, killing its process group when it takes longer than
/// `timeout`. The exec health check and the transition hook use this.
pub async fn run_bounded(
    spec: &CommandSpec,
    timeout: Duration,
    output: Output,
) -> Result<Completion, ProcessError> {
    let (mut child, pid) = spawn(spec, output)?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status.map_err(|source| ProcessError::Wait { pid, source })?;
            // The leader is reaped: its group may hold helpers it left behind, but
            // the group id is no longer ours to signal (see signal_group).
            Ok(Completion::Exited(Exit::from_status(status)))
        }
        Err(_) => {
            signal_group(&mut child, pid, libc::SIGKILL);
            child
                .wait()
                .await
                .map_err(|source| ProcessError::Wait { pid, source })?;
            Ok(Completion::TimedOut)
        }
    }
}

/// Whether a process with this id exists (a zombie counts as gone), for tests.
#[cfg(test)]
pub(super) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generous bound for every wait in these tests: a loaded machine is slow, but
    /// a broken supervisor hangs forever.
    const BOUND: Duration = Duration::from_secs(20);

    fn sh(script: &str) -> CommandSpec {
        CommandSpec::new(["sh", "-c", script])
    }

    async fn wait_gone(pid: u32) {
        tokio::time::timeout(BOUND, async {
            while alive(pid) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("process {pid} still alive"));
    }

    #[test]
    fn exit_descriptions() {
        assert_eq!(Exit::Code(3).to_string(), "exit code 3");
        assert_eq!(Exit::Signal(libc::SIGKILL).to_string(), "killed by SIGKILL");
        assert_eq!(Exit::Signal(libc::SIGHUP).to_string(), "killed by signal 1");
        assert!(Exit::Code(0).success());
        assert!(!Exit::Signal(libc::SIGTERM).success());
    }

    #[tokio::test]
    async fn reports_the_exit_with_its_status() {
        let mut spec = sh("test \"$GREETING\" = hello && test \"$(pwd)\" = / && exit 7");
        spec.env.push(("GREETING".into(), "hello".into()));
        spec.working_dir = Some("/".into());
        let mut process = Supervised::start(&spec).unwrap();
        let exit = tokio::time::timeout(BOUND, process.exited()).await.unwrap();
        assert_eq!(exit.unwrap(), Exit::Code(7));
        // Asked again, the same answer; a stop after the exit says so.
        assert_eq!(process.exited().await.unwrap(), Exit::Code(7));
        assert_eq!(
            process.stop(BOUND).await.unwrap(),
            Stopped::AlreadyExited(Exit::Code(7))
        );
    }

    #[tokio::test]
    async fn a_watched_process_reports_an_exit_it_was_not_asked_for_only() {
        let (tx, mut rx) = mpsc::channel(4);
        let exited = Watched::start(&sh("exit 3"), tx.clone(), |exit| exit).unwrap();
        let report = tokio::time::timeout(BOUND, rx.recv()).await.unwrap();
        assert_eq!(report, Some(Ok(Exit::Code(3))));
        // The stop that follows the exit is answered with it.
        assert_eq!(
            exited.stop(BOUND).await.unwrap(),
            Stopped::AlreadyExited(Exit::Code(3))
        );

        let running = Watched::start(&sh("exec sleep 1000"), tx, |exit| exit).unwrap();
        let pid = running.pid();
        assert_eq!(
            running.stop(BOUND).await.unwrap(),
            Stopped::Terminated(Exit::Signal(libc::SIGTERM))
        );
        assert!(!alive(pid));
        // An exit on request is no report: every sender is gone, nothing came.
        assert_eq!(tokio::time::timeout(BOUND, rx.recv()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn dropping_a_watched_process_kills_it() {
        let (tx, _rx) = mpsc::channel::<Result<Exit, String>>(4);
        let watched = Watched::start(&sh("exec sleep 1000"), tx, |exit| exit).unwrap();
        let pid = watched.pid();
        drop(watched);
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn stop_terminates_then_kills_after_the_grace_period() {
        let process = Supervised::start(&CommandSpec::new(["sleep", "30"])).unwrap();
        let stopped = tokio::time::timeout(BOUND, process.stop(BOUND))
            .await
            .unwrap();
        assert_eq!(
            stopped.unwrap(),
            Stopped::Terminated(Exit::Signal(libc::SIGTERM))
        );

        // A shell that ignores SIGTERM, with a child of its own in its group; it says
        // when the trap is set, so the SIGTERM cannot arrive before it.
        let ready = std::env::temp_dir().join(format!("failover-trap-{}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let script = format!("trap '' TERM; touch {}; sleep 30 & wait", ready.display());
        let stubborn = Supervised::start(&sh(&script)).unwrap();
        let pid = stubborn.pid();
        tokio::time::timeout(BOUND, async {
            while !ready.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the shell never set its trap");
        std::fs::remove_file(&ready).unwrap();
        let stopped = tokio::time::timeout(BOUND, stubborn.stop(Duration::from_millis(200)))
            .await
            .unwrap();
        assert_eq!(stopped.unwrap(), Stopped::Killed);
        assert!(!alive(pid));
    }

    #[tokio::test]
    async fn dropping_the_handle_kills_the_group() {
        let dir = std::env::temp_dir().join(format!("failover-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let process = Supervised::start(&sh(&script)).unwrap();
        let pid = process.pid();
        let grandchild = tokio::time::timeout(BOUND, async {
            loop {
                if let Some(pid) = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                {
                    return pid;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        drop(process);
        wait_gone(pid).await;
        wait_gone(grandchild).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn bounded_commands_exit_or_time_out() {
        let done = run_bounded(&sh("exit 0"), BOUND, Output::Discard).await;
        assert_eq!(done.unwrap(), Completion::Exited(Exit::Code(0)));
        let failed = run_bounded(&sh("exit 2"), BOUND, Output::Discard).await;
        assert_eq!(failed.unwrap(), Completion::Exited(Exit::Code(2)));
        let hung = tokio::time::timeout(
            BOUND,
            run_bounded(
                &sh("trap '' TERM; sleep 30"),
                Duration::from_millis(100),
                Output::Discard,
            ),
        )
        .await
        .unwrap();
        assert_eq!(hung.unwrap(), Completion::TimedOut);
    }

    #[tokio::test]
    async fn start_errors_name_the_program() {
        let missing = Supervised::start(&CommandSpec::new(["/nonexistent/program"]));
        let Err(error) = missing else {
            panic!("started a missing program");
        };
        assert!(
            error.to_string().contains("/nonexistent/program"),
            "{error}"
        );
        assert!(matches!(
            Supervised::start(&CommandSpec::new(Vec::<String>::new())),
            Err(ProcessError::EmptyCommand)
        ));
    }

    /// The death signal: a helper process plays the agent, starts a child the way the
    /// agent does, and is killed with SIGKILL; the child must die with it.
    #[test]
    fn a_sigkilled_agent_takes_its_children_along() {
        // The helper is this test binary, re-run as just this test with a marker.
        if let Ok(pidfile) = std::env::var("FAILOVER_TEST_PDEATHSIG_PIDFILE") {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let child = Supervised::start(&CommandSpec::new(["sleep", "30"])).unwrap();
                std::fs::write(&pidfile, child.pid().to_string()).unwrap();
                std::mem::forget(child);
                tokio::time::sleep(BOUND).await;
            });
            return;
        }
        let pidfile =
            std::env::temp_dir().join(format!("failover-pdeathsig-{}", std::process::id()));
        let _ = std::fs::remove_file(&pidfile);
        let mut agent = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "agent::resources::process::tests::a_sigkilled_agent_takes_its_children_along",
                "--nocapture",
            ])
            .env("FAILOVER_TEST_PDEATHSIG_PIDFILE", &pidfile)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let child: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|text| text.trim().parse().ok())
            {
                break pid;
            }
            assert!(
                started.elapsed() < BOUND,
                "the helper never started its child"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(alive(child));
        agent.kill().unwrap();
        agent.wait().unwrap();
        let started = std::time::Instant::now();
        while alive(child) {
            assert!(
                started.elapsed() < BOUND,
                "child {child} outlived its agent"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&pidfile);
    }
}
