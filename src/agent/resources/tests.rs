//! Root tests of the resource seam against the real kernel: what the event loop asks
//! of [`Resources`] (eligibility, start, reconfigure, stop, shutdown) shows as
//! addresses on the node, in dependency order on start and in reverse on stop (as
//! the kernel's own address notifications show). It runs on its own thread in a fresh network namespace
//! (`unshare(CLONE_NEWNET)` affects only that thread and the `ip` commands it
//! starts), so it touches nothing of the host and leaves nothing behind. Without the
//! privilege to unshare it prints SKIP and passes.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};

use super::process::alive;
use super::{Change, Repair, Resources, Started};
use crate::agent::metrics::Telemetry;
use crate::api::ResourceState;
use crate::contract::model::AgentConfig;
use crate::contract::report::ResourceReason;
use crate::placement::UnableReason;

/// Runs `ip` with `args` in the calling thread's network namespace.
fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `body` on a thread of its own in a fresh network namespace with `lo` and a
/// veth `r0` at 10.77.0.1/24, on a current-thread runtime; prints SKIP and returns
/// without the privilege to unshare.
fn in_namespace<F>(name: &'static str, body: fn() -> F)
where
    F: std::future::Future<Output = ()> + 'static,
{
    let thread = std::thread::spawn(move || {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            eprintln!("SKIP {name}: needs root for a private network namespace: {e}");
            return;
        }
        ip(&["link", "set", "lo", "up"]);
        ip(&["link", "add", "r0", "type", "veth", "peer", "name", "r0p"]);
        ip(&["link", "set", "r0", "up"]);
        ip(&["link", "set", "r0p", "up"]);
        ip(&["addr", "add", "10.77.0.1/24", "dev", "r0"]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(body());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Whether `address` is on any interface of this namespace.
fn present(address: &str) -> bool {
    ip(&["-o", "addr", "show"]).contains(&format!(" {address}/"))
}

/// A cluster of one member at 10.77.0.1 and two groups: `web` with `web_vips`,
/// and `far`, whose VIP's subnet is on no interface here. `deadAfter` is long, so
/// that no VIP expires while the test runs on a loaded machine.
fn config(web_vips: &[&str]) -> AgentConfig {
    let web: String = web_vips
        .iter()
        .enumerate()
        .map(|(i, cidr)| format!("    - {{name: vip{i}, virtualIP: {{address: {cidr}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: seam, namespace: test}}
spec:
  members:
    - {{node: n1, address: 10.77.0.1}}
  heartbeat: {{deadAfter: 30s}}
  quorum: none
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: web, namespace: test}}
spec:
  cluster: seam
  resources:
{web}---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: far, namespace: test}}
spec:
  cluster: seam
  resources:
    - {{name: vip, virtualIP: {{address: 10.99.0.100/24}}}}
"
    );
    AgentConfig::from_yaml(&yaml).unwrap()
}

#[test]
fn the_seam_brings_a_groups_vips_up_adjusts_them_and_takes_them_down() {
    in_namespace("resources seam", seam);
}

async fn seam() {
    let first = config(&["10.77.0.100/24"]);
    let telemetry = Arc::new(Telemetry::new());
    let mut resources = Resources::open("n1", &first, telemetry, Instant::now())
        .await
        .unwrap();

    resources.check_eligibility(&first).await;
    assert_eq!(
        resources.unable(),
        BTreeMap::from([("far".to_owned(), UnableReason::SubnetAbsent)])
    );

    assert!(matches!(
        resources.start("web", &first).await,
        Started::Online(_)
    ));
    assert!(present("10.77.0.100"), "web's VIP is up");
    assert_eq!(resources.held().collect::<Vec<_>>(), ["web"]);

    // A group whose VIP cannot be placed here fails to start and leaves nothing.
    assert_eq!(resources.start("far", &first).await, Started::Failed);
    assert!(!present("10.99.0.100"));
    assert_eq!(resources.held().collect::<Vec<_>>(), ["web"]);

    // A new configuration swaps web's VIP in place: the dropped one goes, the new
    // one comes.
    let second = config(&["10.77.0.101/24"]);
    resources.reconfigure(&second).await;
    assert!(!present("10.77.0.100"), "the dropped VIP is released");
    assert!(present("10.77.0.101"), "the added VIP is up");

    resources.renew("web", &second).await;
    assert!(present("10.77.0.101"), "a renewal keeps the VIP");

    resources.stop("web", &second).await;
    assert!(!present("10.77.0.101"), "stop releases the VIPs");
    assert_eq!(resources.held().count(), 0);

    // What is still held at exit is released.
    assert!(matches!(
        resources.start("web", &second).await,
        Started::Online(_)
    ));
    assert!(present("10.77.0.101"));
    resources.shutdown(&second).await;
    assert!(!present("10.77.0.101"), "shutdown releases what is held");
}

/// A one-member cluster whose group `app` has three VIPs written in the reverse of
/// their dependency order (`front` on `middle` on `base`; `front` only `with_front`),
/// plus a workload, which is reported as not run.
fn ordered(with_front: bool) -> AgentConfig {
    let front = if with_front {
        "    - {name: front, virtualIP: {address: 10.77.0.13/24}, dependsOn: [middle]}\n"
    } else {
        ""
    };
    let yaml = format!(
        "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: order, namespace: test}}
spec:
  members:
    - {{node: n1, address: 10.77.0.1}}
  heartbeat: {{deadAfter: 30s}}
  announcements: {{refreshInterval: 1s}}
  quorum: none
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: app, namespace: test}}
spec:
  cluster: order
  resources:
{front}    - {{name: middle, virtualIP: {{address: 10.77.0.12/24}}, dependsOn: [base]}}
    - {{name: base, virtualIP: {{address: 10.77.0.11/24}}}}
    - {{name: pinned, workload: {{kind: Deployment, name: db}}, dependsOn: [base]}}
"
    );
    AgentConfig::from_yaml(&yaml).unwrap()
}

/// The kernel's address notifications while `body` runs, as `(added, address)` of
/// the 10.77.0.1x addresses in the order the kernel sent them (`ip monitor` in this
/// namespace). Markers added before and after fence the window, so no sleep
/// decides what is seen.
async fn watch_addresses<F: std::future::Future<Output = ()>>(body: F) -> Vec<(bool, String)> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::time::{Duration, timeout};

    const READY: &str = "10.77.0.250";
    const DONE: &str = "10.77.0.251";
    let mut monitor = tokio::process::Command::new("ip")
        .args(["-o", "monitor", "address"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    // The monitor listens once it reports a marker added after it started.
    let mut listening = false;
    for _ in 0..50 {
        ip(&["addr", "add", &format!("{READY}/32"), "dev", "r0"]);
        ip(&["addr", "del", &format!("{READY}/32"), "dev", "r0"]);
        let seen = timeout(Duration::from_millis(200), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(READY) {
                    return true;
                }
            }
            false
        });
        if seen.await == Ok(true) {
            listening = true;
            break;
        }
    }
    assert!(listening, "ip monitor never reported the marker");
    body.await;
    ip(&["addr", "add", &format!("{DONE}/32"), "dev", "r0"]);
    let mut events = Vec::new();
    let collect = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(DONE) {
                break;
            }
            let Some(address) = line.split_whitespace().skip_while(|w| *w != "inet").nth(1) else {
                continue;
            };
            let address = address.split('/').next().unwrap_or_default().to_owned();
            if address.starts_with("10.77.0.1") && !line.contains(READY) {
                events.push((!line.starts_with("Deleted"), address));
            }
        }
    };
    timeout(Duration::from_secs(30), collect)
        .await
        .expect("ip monitor reported the end marker");
    ip(&["addr", "del", &format!("{DONE}/32"), "dev", "r0"]);
    events
}

#[test]
fn resources_start_in_dependency_order_and_stop_in_reverse() {
    in_namespace("resource order", order);
}

async fn order() {
    let config = ordered(true);
    let telemetry = Arc::new(Telemetry::new());
    let mut resources = Resources::open("n1", &config, telemetry.clone(), Instant::now())
        .await
        .unwrap();
    let mut started = Started::Failed;
    let up = watch_addresses(async {
        started = resources.start("app", &config).await;
    })
    .await;
    assert!(matches!(started, Started::Online(_)));
    let added = |list: &[&str]| -> Vec<(bool, String)> {
        list.iter().map(|a| (true, (*a).to_owned())).collect()
    };
    assert_eq!(up, added(&["10.77.0.11", "10.77.0.12", "10.77.0.13"]));
    let states: Vec<(String, ResourceState, String)> = resources
        .states("app")
        .into_iter()
        .map(|r| (r.name, r.state, r.reason))
        .collect();
    let online = |n: &str| (n.to_owned(), ResourceState::Online, "Started".to_owned());
    assert_eq!(
        states,
        [
            online("base"),
            online("middle"),
            online("front"),
            (
                "pinned".to_owned(),
                ResourceState::Offline,
                "NotRunInThisRelease".to_owned()
            ),
        ]
    );
    assert!(
        telemetry.metrics.render().contains(
            "failover_resource_state{group=\"app\",resource=\"front\",state=\"Online\"} 1"
        )
    );
    assert_eq!(
        resources.announced("app"),
        ["10.77.0.11/24", "10.77.0.12/24", "10.77.0.13/24"]
    );

    // A reload that only removes a VIP: it goes, and the announcer restarts without
    // it (before the fix it kept announcing the removed VIP).
    resources.reconfigure(&ordered(false)).await;
    assert!(!present("10.77.0.13"), "the removed VIP is released");
    assert!(present("10.77.0.12") && present("10.77.0.11"));
    assert_eq!(
        resources.announced("app"),
        ["10.77.0.11/24", "10.77.0.12/24"],
        "the announcer no longer announces the removed VIP"
    );

    resources.reconfigure(&config).await;
    let down = watch_addresses(async {
        resources.stop("app", &config).await;
    })
    .await;
    let removed = |list: &[&str]| -> Vec<(bool, String)> {
        list.iter().map(|a| (false, (*a).to_owned())).collect()
    };
    assert_eq!(down, removed(&["10.77.0.13", "10.77.0.12", "10.77.0.11"]));
    assert!(resources.states("app").is_empty(), "nothing held any more");
    assert!(
        telemetry.metrics.render().contains(
            "failover_resource_state{group=\"app\",resource=\"base\",state=\"Offline\"} 1"
        )
    );
}

/// A one-member cluster whose group `svc` runs a VIP, a process (`sleep`, which
/// writes its pid to `dir/pid`) on the VIP, and an exec check on the process that
/// passes while `dir/healthy` exists; check and process may each be restarted once.
fn service(dir: &std::path::Path) -> AgentConfig {
    let dir = dir.display();
    let yaml = format!(
        "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: seam, namespace: test}}
spec:
  members:
    - {{node: n1, address: 10.77.0.1}}
  heartbeat: {{deadAfter: 30s}}
  quorum: none
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: svc, namespace: test}}
spec:
  cluster: seam
  resources:
    - name: check
      dependsOn: [daemon]
      healthCheck:
        exec: {{command: [test, -e, {dir}/healthy]}}
        interval: 50ms
        timeout: 50ms
        failureThreshold: 2
        restartLimit: 1
    - name: daemon
      dependsOn: [vip]
      process:
        command: [sh, -c, 'test \"$FAILOVER_NODE/$FAILOVER_GROUP/$FAILOVER_CLUSTER\" = n1/svc/test/seam && echo $$ > {dir}/pid; exec sleep 1000']
        restartLimit: 1
    - {{name: vip, virtualIP: {{address: 10.77.0.100/24}}}}
"
    );
    AgentConfig::from_yaml(&yaml).unwrap()
}

/// The pid the service wrote, once it differs from `old` (a restart wrote anew).
async fn service_pid(dir: &std::path::Path, old: Option<u32>) -> u32 {
    tokio::time::timeout(BOUND, async {
        loop {
            let pid = std::fs::read_to_string(dir.join("pid"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            if pid.is_some() && pid != old {
                return pid.unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the service wrote no new pid")
}

/// The next report of a watched resource, repaired.
async fn next_repair(resources: &mut Resources, config: &AgentConfig) -> Repair {
    tokio::time::timeout(BOUND, async {
        loop {
            if let Change::Report(event) = resources.changed().await
                && let Some(repair) = resources.repair(event, config).await
            {
                return repair;
            }
        }
    })
    .await
    .expect("no failure reported within the bound")
}

fn service_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("failover-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("healthy"), "").unwrap();
    dir
}

fn resource_state(resources: &Resources, name: &str) -> (ResourceState, String, u32) {
    let report = resources.states("svc");
    let r = report.iter().find(|r| r.name == name).unwrap();
    (r.state, r.reason.clone(), r.restarts)
}

/// Bound of every wait on the watched resources: generous for a loaded machine.
const BOUND: Duration = Duration::from_secs(30);

#[test]
fn a_failing_check_restarts_what_it_checks_then_the_group_fails_over() {
    in_namespace("failing check", failing_check);
}

async fn failing_check() {
    let dir = service_dir("check");
    let config = service(&dir);
    let telemetry = Arc::new(Telemetry::new());
    let mut resources = Resources::open("n1", &config, telemetry.clone(), Instant::now())
        .await
        .unwrap();
    assert!(matches!(
        resources.start("svc", &config).await,
        Started::Online(_)
    ));
    let first = service_pid(&dir, None).await;

    std::fs::remove_file(dir.join("healthy")).unwrap();
    let repair = next_repair(&mut resources, &config).await;
    assert_eq!(
        (
            repair.resource.as_str(),
            repair.reason,
            repair.restarts,
            repair.failed_over
        ),
        ("check", ResourceReason::HealthCheckFailed, 1, false),
        "{repair:?}"
    );
    // The check covers the daemon: it was restarted (a new pid), the VIP was not.
    let second = service_pid(&dir, Some(first)).await;
    assert!(!alive(first), "the old daemon is stopped");
    assert_eq!(
        resource_state(&resources, "daemon"),
        (ResourceState::Online, "Started".into(), 1)
    );
    assert!(
        present("10.77.0.100"),
        "the VIP stays up through the restart"
    );
    assert!(resources.unable().is_empty());

    // Still failing after the one restart allowed: the group fails over.
    let repair = next_repair(&mut resources, &config).await;
    assert_eq!(
        (repair.resource.as_str(), repair.failed_over),
        ("check", true),
        "{repair:?}"
    );
    assert_eq!(
        resources.unable(),
        BTreeMap::from([("svc".to_owned(), UnableReason::ResourceFailed)])
    );
    assert_eq!(resource_state(&resources, "check").1, "RestartLimitReached");
    let metrics = telemetry.metrics.render();
    for series in [
        r#"failover_resource_failures_total{group="svc",resource="check",reason="HealthCheckFailed",action="restarted"} 1"#,
        r#"failover_resource_failures_total{group="svc",resource="check",reason="HealthCheckFailed",action="failed_over"} 1"#,
        r#"failover_resource_step_seconds_count{kind="process",step="start"} 2"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }

    resources.stop("svc", &config).await;
    assert!(!alive(second), "stop ends the daemon");
    assert!(!present("10.77.0.100"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exited_process_is_restarted_then_the_group_fails_over() {
    in_namespace("exited process", exited_process);
}

async fn exited_process() {
    let dir = service_dir("process");
    let config = service(&dir);
    let mut resources = Resources::open("n1", &config, Arc::new(Telemetry::new()), Instant::now())
        .await
        .unwrap();
    assert!(matches!(
        resources.start("svc", &config).await,
        Started::Online(_)
    ));
    let first = service_pid(&dir, None).await;

    kill(first);
    let repair = next_repair(&mut resources, &config).await;
    assert_eq!(
        (
            repair.resource.as_str(),
            repair.reason,
            repair.restarts,
            repair.failed_over
        ),
        ("daemon", ResourceReason::ProcessExited, 1, false),
        "{repair:?}"
    );
    assert_eq!(repair.message, "killed by SIGKILL");
    let second = service_pid(&dir, Some(first)).await;
    // What depends on the daemon came back with it.
    assert_eq!(resource_state(&resources, "check").0, ResourceState::Online);

    kill(second);
    let repair = next_repair(&mut resources, &config).await;
    assert_eq!(
        (repair.resource.as_str(), repair.failed_over),
        ("daemon", true),
        "{repair:?}"
    );
    assert_eq!(
        resources.unable(),
        BTreeMap::from([("svc".to_owned(), UnableReason::ResourceFailed)])
    );
    resources.stop("svc", &config).await;
    assert!(!present("10.77.0.100"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn kill(pid: u32) {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {pid}");
}
