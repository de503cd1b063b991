//! The user guide in docs/ stays connected to the repository: every example
//! manifest is described in docs/examples.md, and every relative link of a docs
//! page points at a file that exists (and, for `#anchors` into docs pages, at a
//! heading that exists).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docs_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    pages
}

/// GitHub's anchor of a heading: lowercase, spaces to dashes, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(page: &Path) -> Vec<String> {
    std::fs::read_to_string(page)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// `](target)` links of a Markdown text, outside inline code (a regex such as
/// `[a-z]([a-z]*)` in a pattern is not a link).
fn links(text: &str) -> Vec<String> {
    let prose: String = text.split('`').step_by(2).collect::<Vec<_>>().join(" ");
    prose
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(t, _)| t.to_owned()))
        .collect()
}

#[test]
fn every_example_is_described() {
    let text = std::fs::read_to_string(root().join("docs/examples.md")).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            count += 1;
            assert!(
                text.contains(&format!("(../examples/{name})")),
                "docs/examples.md does not describe examples/{name}"
            );
        }
    }
    assert!(count > 0);
}

#[test]
fn relative_links_resolve() {
    let pages = docs_pages();
    assert!(pages.len() >= 8, "{pages:?}");
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
            } else if !fragment.is_empty() && !anchors(&target).contains(&fragment.to_owned()) {
                broken.push(format!("{}: {link}: no such heading", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_link_checker_can_fail() {
    assert_eq!(anchor("Clear a Failed group"), "clear-a-failed-group");
    assert_eq!(anchor("1. The image"), "1-the-image");
    assert_eq!(
        links("see [a](x.md#y) and [b](https://e.org), not `[c](d)`"),
        ["x.md#y", "https://e.org"]
    );
}
