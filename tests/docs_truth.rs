//! The docs name only the codes the code writes, and explain every one it writes
//! (issue 13, items 2 and 7).
//!
//! **What counts as naming a code.** In README.md and docs/*.md, outside fenced code
//! blocks, an inline code span (text between single backticks) whose whole text is
//! one UpperCamelCase word — a capital first, letters and digits only, at least one
//! lowercase letter: `OwnerLost`, `Failed`, `Ready` — or such a word followed by
//! `=True` or `=False` (a condition, `QuorumLost=True`). Prose, fenced examples and
//! spans with anything else in them (`kubectl get rg`, `VIP`, `a=b`) are not checked.
//!
//! **What the code defines** ([`vocabulary`]): the codes of ownership reasons
//! (`placement::Reason`), unable reasons (`placement::UnableReason`) and resource
//! reasons (`contract::report::ResourceReason`); the condition types, condition
//! reasons, Event reasons and webhook events of `api::conditions`; every `enum`
//! value of the generated CRD schemas (phases, states, policies, formats, kinds); the
//! two kinds; the alerts of the chart's PrometheusRule; and the few Kubernetes words
//! of [`KUBERNETES`]. Every list is read from the code, so a code added there (a new
//! `ResourceReason`) is held to the docs without touching this test.
//!
//! **The other direction**: every reason code, Event reason and webhook event the
//! code defines has a row in the reference tables of docs/troubleshooting.md
//! (section [`REFERENCE`]), whose first cell is the code in backticks; every
//! outcome of a configuration push is named in docs/operations.md ([`PUSH_SECTION`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use failover::api::conditions;
use failover::api::crds;
use failover::contract::report::ResourceReason;
use failover::placement::{Reason, UnableReason};
use serde_json::Value;

/// The section of docs/troubleshooting.md that explains every code.
const REFERENCE: &str = "## Reason codes";

/// Words of Kubernetes itself the docs name in backticks: kinds a user writes
/// (`Kustomization`), an image pull policy, a Pod event reason and condition
/// statuses.
const KUBERNETES: [&str; 5] = [
    "Kustomization",
    "IfNotPresent",
    "FailedCreate",
    conditions::STATUS_TRUE,
    conditions::STATUS_FALSE,
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and docs/*.md, with their paths relative to the repository.
fn pages() -> Vec<(String, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ is readable")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let name = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
            (name, text)
        })
        .collect()
}

/// Reason codes the code writes: each needs a row in the reference.
fn reason_codes() -> BTreeSet<String> {
    let mut codes: BTreeSet<String> = BTreeSet::new();
    codes.extend(Reason::ALL.iter().map(|r| r.code().to_owned()));
    codes.extend(UnableReason::ALL.iter().map(|r| r.code().to_owned()));
    codes.extend(ResourceReason::ALL.iter().map(|r| r.code().to_owned()));
    codes.extend(conditions::reason::ALL.iter().map(|&c| c.to_owned()));
    codes.extend(conditions::event::ALL.iter().map(|&c| c.to_owned()));
    codes.extend(conditions::webhook::ALL.iter().map(|&c| c.to_owned()));
    codes
}

/// Every string of every `enum` in a JSON schema.
fn enum_values(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get("enum") {
                out.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            map.values().for_each(|v| enum_values(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| enum_values(v, out)),
        _ => {}
    }
}

/// The alert names of the chart's PrometheusRule template (`- alert: Name`).
fn alerts() -> BTreeSet<String> {
    let path = root().join("charts/failover-operator/templates/prometheusrule.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Every word the docs may name in backticks.
fn vocabulary() -> BTreeSet<String> {
    let mut words = reason_codes();
    words.extend(conditions::ALL.iter().map(|&c| c.to_owned()));
    // The transition hook's reason for a group removed from the configuration.
    words.insert(failover::agent::resources::hook::REMOVED.to_owned());
    for crd in crds() {
        words.insert(crd.spec.names.kind.clone());
        let schema = serde_json::to_value(&crd).expect("a CRD serializes");
        enum_values(&schema, &mut words);
    }
    words.extend(alerts());
    words.extend(KUBERNETES.iter().map(|&w| w.to_owned()));
    words
}

/// Whether `word` is one UpperCamelCase word.
fn upper_camel(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric())
        && word.chars().any(|c| c.is_ascii_lowercase())
}

/// The codes a Markdown text names, by the rule of the module doc: (line, word).
fn named_codes(text: &str) -> Vec<(usize, String)> {
    // Fenced blocks become empty lines, so line numbers stay right and a span
    // cannot start in a block.
    let mut fenced = false;
    let prose: Vec<&str> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return "";
            }
            if fenced { "" } else { line }
        })
        .collect();
    // A span may wrap onto the next line: scan the whole text, counting lines.
    let mut found = Vec::new();
    let (mut line, mut start, mut span) = (1, 1, None::<String>);
    for c in prose.join("\n").chars() {
        match (&mut span, c) {
            (None, '`') => {
                span = Some(String::new());
                start = line;
            }
            (Some(text), '`') => {
                let word = text
                    .strip_suffix("=True")
                    .or_else(|| text.strip_suffix("=False"))
                    .unwrap_or(text);
                if upper_camel(word) {
                    found.push((start, word.to_owned()));
                }
                span = None;
            }
            (Some(text), c) => text.push(c),
            (None, _) => {}
        }
        if c == '\n' {
            line += 1;
        }
    }
    found
}

/// The codes a text names that are not in `known`: "file:line: `word`".
fn unknown(file: &str, text: &str, known: &BTreeSet<String>) -> Vec<String> {
    named_codes(text)
        .into_iter()
        .filter(|(_, word)| !known.contains(word))
        .map(|(line, word)| format!("{file}:{line}: `{word}`"))
        .collect()
}

#[test]
fn the_docs_name_only_codes_the_code_defines() {
    let known = vocabulary();
    let wrong: Vec<String> = pages()
        .iter()
        .flat_map(|(file, text)| unknown(file, text, &known))
        .collect();
    assert!(
        wrong.is_empty(),
        "the docs name codes the code does not define (see tests/docs_truth.rs for the rule):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_matcher_finds_a_planted_unknown_code() {
    let known = vocabulary();
    let text = "Reason `OwnerLost`, then `OwnerGone`.\n\
                `kubectl get rg` and `VIP` are no codes;\n\
                ```\n`InBlock`\n```\n\
                a span that wraps: `Not\nACode`, and `Planted=True`.\n";
    assert_eq!(
        unknown("page.md", text, &known),
        ["page.md:1: `OwnerGone`", "page.md:7: `Planted`"]
    );
    assert!(known.contains("OwnerLost"));
    assert!(known.contains("Pending"), "the CRDs' phases are known");
}

/// The first cells of the reference tables: the codes docs/troubleshooting.md explains.
fn explained_codes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/troubleshooting.md"))
        .expect("docs/troubleshooting.md is readable");
    let section = text
        .split_once(REFERENCE)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("docs/troubleshooting.md has no section {REFERENCE:?}"));
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(code, _)| code.to_owned()))
        .collect()
}

#[test]
fn every_code_the_code_writes_is_explained() {
    let explained = explained_codes();
    let missing: Vec<String> = reason_codes()
        .into_iter()
        .filter(|code| !explained.contains(code))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md ({REFERENCE}) has no row for: {}",
        missing.join(", ")
    );
}

/// The section of docs/operations.md that explains `failover config push`.
const PUSH_SECTION: &str = "### Push the file to every member (standalone)";

#[test]
fn every_push_outcome_is_explained() {
    use failover::membership::push::PushOutcome;
    let text = std::fs::read_to_string(root().join("docs/operations.md"))
        .expect("docs/operations.md is readable");
    let section = text
        .split_once(PUSH_SECTION)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("docs/operations.md has no section {PUSH_SECTION:?}"));
    let section = section.split("\n## ").next().unwrap_or(section);
    let missing: Vec<&str> = PushOutcome::ALL
        .iter()
        .map(|o| o.label())
        .filter(|label| !section.contains(&format!("`{label}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md ({PUSH_SECTION}) does not name: {}",
        missing.join(", ")
    );
    assert!(section.contains("`failover_config_push_total{outcome}`"));
}
