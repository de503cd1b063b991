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

/// The witness reads its key files again on SIGHUP: a file with a short key keeps
/// the running keys, a good one replaces them, and the process keeps running.
#[test]
fn witness_reads_its_key_files_again_on_sighup() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = std::env::temp_dir().join(format!("witness-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, previous) = (dir.join("key"), dir.join("previous"));
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::write(&previous, "0123456789abcdef0123456789abcdef\n").unwrap();
    let mut witness = failover()
        .args(["witness", "--listen", "127.0.0.1:0", "--cluster", "pair"])
        .arg("--key-file")
        .arg(&key)
        .arg("--previous-key-file")
        .arg(&previous)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = witness.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Each expected line within 10 s, reading at most 100 lines.
    let wait_for = |needle: &str| {
        for _ in 0..100 {
            match received.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(error) => panic!("no line with {needle:?}: {error}"),
            }
        }
        panic!("no line with {needle:?} in 100 lines")
    };
    let hangup = |pid: u32| {
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    wait_for("witness started");

    std::fs::write(&key, "short\n").unwrap();
    hangup(witness.id());
    let refused = wait_for("heartbeat keys not reloaded");
    assert!(refused.contains(&key.display().to_string()), "{refused}");

    std::fs::write(&key, "fedcba9876543210fedcba9876543210\n").unwrap();
    hangup(witness.id());
    wait_for("heartbeat keys reloaded");
    assert!(
        witness.try_wait().unwrap().is_none(),
        "the witness still runs"
    );
    witness.kill().unwrap();
    witness.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
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
