//! docs/api.md must be what `failover docs` generates from the CRD schemas now.

use std::path::PathBuf;
use std::process::Command;

use failover::api::docs::{REGENERATE, api_reference};

fn api_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/api.md")
}

#[test]
fn docs_api_md_is_current() {
    let on_disk = std::fs::read_to_string(api_md()).unwrap_or_else(|e| {
        panic!(
            "cannot read docs/api.md: {e}\nregenerate with `cargo run -- docs --out docs/api.md`"
        )
    });
    let generated = api_reference();
    if on_disk != generated {
        let line = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || on_disk.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "docs/api.md is not current (first difference at line {line}); regenerate with `{REGENERATE}` (cargo run -- docs --out docs/api.md)"
        );
    }
}

#[test]
fn the_docs_command_writes_and_prints_the_reference() {
    let dir = std::env::temp_dir().join(format!("failover-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("api.md");
    let status = Command::new(env!("CARGO_BIN_EXE_failover"))
        .args(["docs", "--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), api_reference());
    let printed = Command::new(env!("CARGO_BIN_EXE_failover"))
        .arg("docs")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), api_reference());
    let failed = Command::new(env!("CARGO_BIN_EXE_failover"))
        .args([
            "docs",
            "--out",
            dir.join("missing/dir/api.md").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        !failed.status.success(),
        "writing into a missing directory must fail"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
