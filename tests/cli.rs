//! The `failover` binary end to end: exit codes and output of `crd` and `validate`.

use std::path::PathBuf;
use std::process::Command;

fn failover() -> Command {
    Command::new(env!("CARGO_BIN_EXE_failover"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn crd_prints_the_checked_in_files() {
    let out = failover().arg("crd").output().unwrap();
    assert!(out.status.success());
    let mut want = String::new();
    for name in [
        "failoverclusters.failover.dev.yaml",
        "resourcegroups.failover.dev.yaml",
    ] {
        want.push_str("---\n");
        want.push_str(&std::fs::read_to_string(repo("crds").join(name)).unwrap());
    }
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}

#[test]
fn crd_out_dir_writes_one_file_per_crd() {
    let dir = std::env::temp_dir().join(format!("failover-crd-{}", std::process::id()));
    let out = failover()
        .args(["crd", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    for name in [
        "failoverclusters.failover.dev.yaml",
        "resourcegroups.failover.dev.yaml",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            std::fs::read_to_string(repo("crds").join(name)).unwrap()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_exit_codes() {
    let examples: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = failover()
        .args(["validate", "--standalone"])
        .args(&examples)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let bad = std::env::temp_dir().join(format!("failover-bad-{}.yaml", std::process::id()));
    std::fs::write(
        &bad,
        "apiVersion: failover.dev/v1alpha1\nkind: FailoverCluster\nmetadata: {name: c}\nspec:\n  members: [{node: a}]\n",
    )
    .unwrap();
    let out = failover().arg("validate").arg(&bad).output().unwrap();
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "FailoverCluster/c: spec.members: quorum majority needs at least 2 voting members"
        ),
        "{stdout}"
    );

    let out = failover().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap rejects a missing FILE");
}

#[test]
fn ctl_standalone_names_the_agent_it_cannot_reach() {
    // A port just freed: nothing listens on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = failover()
        .args(["ctl", "--standalone"])
        .arg(repo("examples/2-vip-priorities-failback.yaml"))
        .args(["--agent", &addr, "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach an agent at {addr}")),
        "{stderr}"
    );

    let out = failover()
        .args(["ctl", "--agent", &addr, "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--standalone"),
        "--agent needs --standalone: {out:?}"
    );
}

#[test]
fn config_push_and_the_write_verbs_send_nothing_for_a_bad_file_or_name() {
    let dir = std::env::temp_dir().join(format!("failover-cli-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, "a key of sixteen bytes or more\n").unwrap();
    let invalid = dir.join("invalid.yaml");
    std::fs::write(
        &invalid,
        "apiVersion: failover.dev/v1alpha1\nkind: FailoverCluster\n",
    )
    .unwrap();

    let out = failover()
        .args(["config", "push"])
        .arg(&invalid)
        .arg("--key-file")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not pushed"), "{stderr}");
    assert!(out.stdout.is_empty(), "{out:?}");

    let out = failover()
        .args(["ctl", "--standalone"])
        .arg(repo("examples/2-vip-priorities-failback.yaml"))
        .arg("--key-file")
        .arg(&key)
        .args(["move", "nope", "n1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no ResourceGroup nope in"), "{stderr}");

    let out = failover()
        .args(["config", "push"])
        .arg(&invalid)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap requires --key-file: {out:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
