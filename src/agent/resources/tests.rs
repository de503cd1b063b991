//! Root test of the resource seam against the real kernel: what the event loop asks
//! of [`Resources`] (eligibility, start, reconfigure, stop, shutdown) shows as
//! addresses on the node. It runs on its own thread in a fresh network namespace
//! (`unshare(CLONE_NEWNET)` affects only that thread and the `ip` commands it
//! starts), so it touches nothing of the host and leaves nothing behind. Without the
//! privilege to unshare it prints SKIP and passes.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use nix::sched::{CloneFlags, unshare};

use super::{Resources, Started};
use crate::agent::metrics::Telemetry;
use crate::contract::model::AgentConfig;

/// Runs `ip` with `args` in the calling thread's network namespace.
fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
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
    let thread = std::thread::spawn(|| {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            eprintln!("SKIP resources seam: needs root for a private network namespace: {e}");
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
        runtime.block_on(seam());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn seam() {
    let first = config(&["10.77.0.100/24"]);
    let telemetry = Arc::new(Telemetry::new());
    let mut resources = Resources::open(&first, telemetry, Instant::now())
        .await
        .unwrap();

    resources.check_eligibility(&first).await;
    assert_eq!(resources.unable(), BTreeSet::from(["far".to_owned()]));

    assert_eq!(resources.start("web", &first, None).await, Started::Online);
    assert!(present("10.77.0.100"), "web's VIP is up");
    assert_eq!(resources.held().collect::<Vec<_>>(), ["web"]);

    // A group whose VIP cannot be placed here fails to start and leaves nothing.
    assert_eq!(resources.start("far", &first, None).await, Started::Failed);
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

    resources.stop("web").await;
    assert!(!present("10.77.0.101"), "stop releases the VIPs");
    assert_eq!(resources.held().count(), 0);

    // What is still held at exit is released.
    assert_eq!(resources.start("web", &second, None).await, Started::Online);
    assert!(present("10.77.0.101"));
    resources.shutdown(&second).await;
    assert!(!present("10.77.0.101"), "shutdown releases what is held");
}
