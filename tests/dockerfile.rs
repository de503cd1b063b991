//! No container engine runs here, so the Dockerfile is checked by reading it: its
//! build command must be the static musl build we prove (`cargo build --release
//! --locked --no-default-features --target x86_64-unknown-linux-musl --bin failover`,
//! see the issue 6 report; no default features: the image ships without the lab),
//! its final stage distroless-static (or scratch) as a non-root user, and its build
//! context must hold every file Cargo.toml names. e2e/image.sh builds and starts the
//! same image without the base images (buildah from scratch, podman): its layout and
//! build command must be the Dockerfile's.

use std::path::PathBuf;

const TARGET: &str = "x86_64-unknown-linux-musl";

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Instructions as (KEYWORD, arguments), continuation lines joined, comments and
/// parser directives dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    assert!(current.is_empty(), "Dockerfile ends in a continuation line");
    out
}

/// The stages: each FROM with the instructions after it.
fn stages(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (keyword, args) in instructions(text) {
        if keyword == "FROM" {
            stages.push((args, Vec::new()));
        } else {
            stages
                .last_mut()
                .expect("an instruction before the first FROM")
                .1
                .push((keyword, args));
        }
    }
    stages
}

/// `key = "value"` of a Cargo.toml line.
fn toml_string(line: &str, key: &str) -> Option<String> {
    let (k, v) = line.split_once('=')?;
    (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
}

fn version_tuple(text: &str) -> Vec<u32> {
    text.split('.').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn the_builder_builds_the_static_musl_binary() {
    let dockerfile = read("Dockerfile");
    let stages = stages(&dockerfile);
    assert_eq!(stages.len(), 2, "a builder and a final stage");
    let (builder_image, builder) = &stages[0];

    // The builder's toolchain is at least the crate's rust-version.
    let image = builder_image.split_whitespace().next().unwrap();
    let tag = image
        .strip_prefix("rust:")
        .expect("the builder is a rust image");
    let toolchain: String = tag.split('-').next().unwrap().to_owned();
    let cargo = read("Cargo.toml");
    let floor = cargo
        .lines()
        .find_map(|l| toml_string(l, "rust-version"))
        .expect("rust-version in Cargo.toml");
    assert!(
        version_tuple(&toolchain) >= version_tuple(&floor),
        "builder rust:{toolchain} is older than rust-version {floor}"
    );

    let runs: Vec<&String> = builder
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, a)| a)
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains(&format!("rustup target add {TARGET}"))),
        "the builder must add the {TARGET} target"
    );
    let builds: Vec<Vec<&str>> = runs
        .iter()
        .flat_map(|r| r.split("&&"))
        .map(|cmd| cmd.split_whitespace().collect::<Vec<_>>())
        .filter_map(|words| {
            let at = words.windows(2).position(|w| w == ["cargo", "build"])?;
            Some(words[at..].to_vec())
        })
        .collect();
    assert_eq!(builds.len(), 1, "exactly one cargo build: {builds:?}");
    let build = &builds[0];
    assert_eq!(
        build,
        &[
            "cargo",
            "build",
            "--release",
            "--locked",
            "--no-default-features",
            "--target",
            TARGET,
            "--bin",
            "failover"
        ],
        "the build command CI proves"
    );

    // The binary it builds is the one the crate declares and the one copied out.
    assert!(
        cargo.contains("[[bin]]\nname = \"failover\""),
        "Cargo.toml no longer declares the `failover` binary"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains(&format!("target/{TARGET}/release/failover"))),
        "the builder must copy target/{TARGET}/release/failover out"
    );
}

#[test]
fn the_final_stage_is_distroless_static_and_non_root() {
    let dockerfile = read("Dockerfile");
    let stages = stages(&dockerfile);
    let (image, last) = stages.last().unwrap();
    assert!(
        image == "gcr.io/distroless/static-debian12:nonroot" || image == "scratch",
        "final stage {image}: distroless static or scratch (the binary is static)"
    );
    let user = last
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, a)| a.as_str())
        .expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "0" && uid != "root",
        "the image's user must not be root: {user}"
    );
    assert!(
        last.iter()
            .any(|(k, a)| k == "COPY" && a.starts_with("--from=builder ")),
        "the final stage copies the binary from the builder"
    );
    let entrypoint = last
        .iter()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, a)| a.as_str())
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint, r#"["/usr/local/bin/failover"]"#);
    // The agent's NET_ADMIN/NET_RAW come from the pod spec: the image adds no
    // capabilities (distroless has no setcap) and runs no setup as root.
    assert!(
        !last.iter().any(|(k, _)| k == "RUN"),
        "no RUN in the final stage"
    );
}

#[test]
fn the_build_context_holds_every_file_cargo_needs() {
    let dockerfile = read("Dockerfile");
    let copied: Vec<String> = stages(&dockerfile)[0]
        .1
        .iter()
        .filter(|(k, _)| k == "COPY")
        .flat_map(|(_, a)| {
            let words: Vec<&str> = a.split_whitespace().collect();
            // Every word but the destination.
            words[..words.len() - 1]
                .iter()
                .map(|w| w.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let dockerignore = read(".dockerignore");
    let kept: Vec<&str> = dockerignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .map(|p| p.trim_end_matches('/'))
        .collect();
    assert!(
        dockerignore.lines().any(|l| l.trim() == "*"),
        ".dockerignore starts from nothing"
    );
    let cargo = read("Cargo.toml");
    let mut needed: Vec<String> = vec!["Cargo.toml".into(), "Cargo.lock".into()];
    needed.extend(cargo.lines().filter_map(|l| toml_string(l, "path")));
    // Benches without a path live at benches/<name>.rs; cargo refuses to start when
    // a declared one is missing, even for `--bin`.
    let mut section = "";
    for line in cargo.lines() {
        if line.starts_with('[') {
            section = line.trim();
        } else if section == "[[bench]]"
            && let Some(name) = toml_string(line, "name")
        {
            needed.push(format!("benches/{name}.rs"));
        }
    }
    assert!(
        needed.iter().any(|f| f.starts_with("benches/")),
        "{needed:?}"
    );
    for file in &needed {
        let top = file.split('/').next().unwrap();
        assert!(
            copied.iter().any(|c| c == top || c == file),
            "{file} is not copied into the builder"
        );
        assert!(
            kept.contains(&top) || kept.contains(&file.as_str()),
            "{file} is excluded by .dockerignore"
        );
    }
}

/// `NAME=value` assignments of a shell script, single quotes removed.
fn shell_variable(script: &str, name: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(|v| v.trim().trim_matches('\'').to_owned())
        .unwrap_or_else(|| panic!("e2e/image.sh does not set {name}"))
}

#[test]
fn the_image_script_builds_the_dockerfile_layout() {
    let dockerfile = read("Dockerfile");
    let script = read("e2e/image.sh");
    let stages = stages(&dockerfile);
    let (_, last) = stages.last().unwrap();
    let final_arg = |keyword: &str| {
        last.iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("the final stage has no {keyword}"))
    };
    let copy = final_arg("COPY");
    let destination = copy.split_whitespace().last().unwrap();
    assert_eq!(shell_variable(&script, "IMAGE_BINARY"), destination);
    assert_eq!(shell_variable(&script, "IMAGE_USER"), final_arg("USER"));
    assert_eq!(
        shell_variable(&script, "IMAGE_ENTRYPOINT"),
        final_arg("ENTRYPOINT")
    );
    assert_eq!(shell_variable(&script, "IMAGE_CMD"), final_arg("CMD"));
    assert_eq!(shell_variable(&script, "RUST_TARGET"), TARGET);
    // The same build command, with the target spelled through the variable.
    assert!(
        script
            .contains(
                "cargo build --release --locked --no-default-features --target \"${RUST_TARGET}\" --bin failover"
            ),
        "e2e/image.sh must build the binary as the Dockerfile does"
    );
    assert!(
        script.contains("buildah") && script.contains("from scratch"),
        "e2e/image.sh builds from scratch with buildah"
    );
}
