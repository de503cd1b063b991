//! The transition hook: a command run on this node each time one of its groups
//! changes state here (became owner, released, fenced, failed), with the cluster,
//! group, node, transition, reason and epoch in its environment — what keepalived's
//! `notify_*` scripts do.
//!
//! Owns the hook's environment (a pure function) and a per-group runner task that
//! runs the hooks one after another, in the order of the transitions, each killed
//! when it overruns its timeout. Must never block or fail the caller: a transition
//! is queued and the call returns; a hook that fails or hangs is logged, nothing else.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::process::{CommandSpec, Completion, Output, ProcessError, run_bounded};
use crate::telemetry::error_report;

/// Transitions queued per group before further ones are dropped (with a warning):
/// hooks are bounded in time, so only a storm of transitions fills the queue.
pub const QUEUE_LEN: usize = 16;

/// `FAILOVER_REASON` of the `released` transition of a group removed from the
/// configuration (the others carry a placement reason or an Event reason).
pub const REMOVED: &str = "Removed";

/// A change of a group's state on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    /// This node brought the group online.
    BecameOwner,
    /// This node took the group offline on purpose (handover, leave, pause).
    Released,
    /// This node dropped the group because it lost quorum or its claim.
    Fenced,
    /// The group went Failed here (failover limit or resources that cannot start).
    Failed,
}

impl TransitionKind {
    /// The value of `FAILOVER_TRANSITION`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::BecameOwner => "became-owner",
            TransitionKind::Released => "released",
            TransitionKind::Fenced => "fenced",
            TransitionKind::Failed => "failed",
        }
    }
}

/// What the hook is told about one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The FailoverCluster as `namespace/name`.
    pub cluster: String,
    /// ResourceGroup name.
    pub group: String,
    /// This node.
    pub node: String,
    /// What happened.
    pub kind: TransitionKind,
    /// Why, as a CamelCase reason (e.g. `OwnerLost`, `RestartLimitReached`).
    pub reason: String,
    /// The group's ownership epoch at the transition.
    pub epoch: u64,
}

/// The variables the hook finds in its environment.
pub fn hook_environment(transition: &Transition) -> Vec<(String, String)> {
    [
        ("FAILOVER_CLUSTER", transition.cluster.clone()),
        ("FAILOVER_GROUP", transition.group.clone()),
        ("FAILOVER_NODE", transition.node.clone()),
        ("FAILOVER_TRANSITION", transition.kind.as_str().to_owned()),
        ("FAILOVER_REASON", transition.reason.clone()),
        ("FAILOVER_EPOCH", transition.epoch.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// A group's hook: the command and how long one run may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// What to run; the transition's variables are added to its environment.
    pub command: CommandSpec,
    /// Longest one run may take; then its process group is killed.
    pub timeout: Duration,
}

/// Runs the hook once for `transition` and logs how it ended.
pub async fn run_hook(hook: &Hook, transition: &Transition) -> Result<Completion, ProcessError> {
    let mut command = hook.command.clone();
    command.env.extend(hook_environment(transition));
    let outcome = run_bounded(&command, hook.timeout, Output::Inherit).await;
    let Transition {
        cluster,
        group,
        node,
        kind,
        epoch,
        ..
    } = transition;
    let transition = kind.as_str();
    match &outcome {
        Ok(Completion::Exited(exit)) if exit.success() => {
            info!(
                cluster,
                group, node, transition, epoch, "transition hook succeeded"
            );
        }
        Ok(Completion::Exited(exit)) => {
            warn!(cluster, group, node, transition, epoch, %exit, "transition hook failed");
        }
        Ok(Completion::TimedOut) => warn!(
            cluster,
            group,
            node,
            transition,
            epoch,
            timeout = ?hook.timeout,
            "transition hook timed out; killed"
        ),
        Err(error) => warn!(
            cluster,
            group,
            node,
            transition,
            epoch,
            error = %error_report(error),
            "transition hook did not start"
        ),
    }
    outcome
}

/// One group's hook runner: a task that runs the hook for each queued transition,
/// in order. Dropping it stops the task (a hook already running is killed with it).
#[derive(Debug)]
pub struct HookRunner {
    queue: mpsc::Sender<Transition>,
    task: JoinHandle<()>,
}

impl Drop for HookRunner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HookRunner {
    /// Starts the runner task for `hook`.
    pub fn spawn(hook: Hook) -> Self {
        let (queue, mut transitions) = mpsc::channel::<Transition>(QUEUE_LEN);
        let task = tokio::spawn(async move {
            while let Some(transition) = transitions.recv().await {
                // The outcome is logged by run_hook; the runner has nobody to tell.
                let _ = run_hook(&hook, &transition).await;
            }
        });
        Self { queue, task }
    }

    /// Queues the hook for `transition` and returns at once; when the queue is
    /// full the transition is logged and dropped.
    pub fn notify(&self, transition: Transition) {
        if let Err(error) = self.queue.try_send(transition) {
            let transition = match error {
                mpsc::error::TrySendError::Full(t) | mpsc::error::TrySendError::Closed(t) => t,
            };
            warn!(
                cluster = transition.cluster,
                group = transition.group,
                node = transition.node,
                transition = transition.kind.as_str(),
                epoch = transition.epoch,
                "transition hook not queued (queue full or runner stopped); this transition runs no hook"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(20);

    fn transition(kind: TransitionKind, epoch: u64) -> Transition {
        Transition {
            cluster: "c".into(),
            group: "web".into(),
            node: "a".into(),
            kind,
            reason: "OwnerLost".into(),
            epoch,
        }
    }

    #[test]
    fn the_environment_names_everything() {
        let env = hook_environment(&transition(TransitionKind::Fenced, 7));
        let value = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(value("FAILOVER_CLUSTER"), Some("c"));
        assert_eq!(value("FAILOVER_GROUP"), Some("web"));
        assert_eq!(value("FAILOVER_NODE"), Some("a"));
        assert_eq!(value("FAILOVER_TRANSITION"), Some("fenced"));
        assert_eq!(value("FAILOVER_REASON"), Some("OwnerLost"));
        assert_eq!(value("FAILOVER_EPOCH"), Some("7"));
        assert_eq!(env.len(), 6);
    }

    /// A hook that appends its environment to a file, one line per run.
    fn recording_hook(file: &std::path::Path, timeout: Duration) -> Hook {
        let script = format!(
            "[ \"$FAILOVER_TRANSITION\" = fenced ] && exec sleep 30; \
             echo \"$FAILOVER_CLUSTER $FAILOVER_GROUP $FAILOVER_NODE $FAILOVER_TRANSITION $FAILOVER_REASON $FAILOVER_EPOCH\" >> {}",
            file.display()
        );
        Hook {
            command: CommandSpec::new(["sh".to_owned(), "-c".to_owned(), script]),
            timeout,
        }
    }

    #[tokio::test]
    async fn hooks_run_in_order_and_a_hung_one_is_killed() {
        let dir = std::env::temp_dir().join(format!("failover-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("transitions");
        let runner = HookRunner::spawn(recording_hook(&file, Duration::from_millis(300)));
        runner.notify(transition(TransitionKind::BecameOwner, 3));
        // This one hangs until its timeout; the next one must still run.
        runner.notify(transition(TransitionKind::Fenced, 3));
        runner.notify(transition(TransitionKind::Released, 4));
        let lines = tokio::time::timeout(BOUND, async {
            loop {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if text.lines().count() >= 2 {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the hooks never ran");
        assert_eq!(
            lines,
            "c web a became-owner OwnerLost 3\nc web a released OwnerLost 4\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn run_hook_reports_how_it_ended() {
        let hook = |script: &str| Hook {
            command: CommandSpec::new(["sh", "-c", script]),
            timeout: Duration::from_millis(300),
        };
        let t = transition(TransitionKind::Failed, 1);
        let checks_its_environment = hook("test \"$FAILOVER_TRANSITION\" = failed");
        let ok = tokio::time::timeout(BOUND, run_hook(&checks_its_environment, &t)).await;
        assert!(matches!(ok.unwrap(), Ok(Completion::Exited(e)) if e.success()));
        let sleeps = hook("sleep 30");
        let hung = tokio::time::timeout(BOUND, run_hook(&sleeps, &t)).await;
        assert!(matches!(hung.unwrap(), Ok(Completion::TimedOut)));
        let missing = Hook {
            command: CommandSpec::new(["/nonexistent/hook"]),
            timeout: Duration::from_millis(300),
        };
        assert!(matches!(
            run_hook(&missing, &t).await,
            Err(ProcessError::Spawn { .. })
        ));
    }
}
