//! The README stays a front door and the docs hold together: every relative
//! link in README.md and docs/*.md names a file that exists, and a link's
//! `#anchor` a heading of that file, so moving or renaming a page or a
//! heading fails here rather than in a reader's browser.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The text outside fenced code blocks: a `](` in a code sample is not a link.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Markdown link targets `[text](target)` and HTML `src="target"`.
fn targets(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (open, close) in [("](", ')'), ("src=\"", '"')] {
        let mut rest = text;
        while let Some(at) = rest.find(open) {
            rest = &rest[at + open.len()..];
            if let Some(end) = rest.find(close) {
                // A title after the target (`(a.md "title")`) is not part of it.
                let target = rest[..end].split_whitespace().next().unwrap_or("");
                found.push(target.to_string());
                rest = &rest[end..];
            }
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_`
/// kept, spaces as `-`, everything else dropped.
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

fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in targets(&prose(&text)) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let name = page.strip_prefix(root()).unwrap().display();
            if !resolved.exists() {
                broken.push(format!("{name}: {target}: no such file"));
                continue;
            }
            if let Some(fragment) = fragment {
                let heads = anchors(&std::fs::read_to_string(&resolved).unwrap_or_default());
                if !heads.iter().any(|h| h == fragment) {
                    broken.push(format!("{name}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "only {checked} links found: is the parser right?");
}

#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(
        lines.len() <= 250,
        "README.md has {} lines: move detail to docs/",
        lines.len()
    );
    for command in ["cargo run --release -- demo", "tests/setup.sh && cargo test"] {
        let at = lines.iter().position(|l| l.trim() == command);
        assert!(
            at.is_some_and(|n| n < 60),
            "`{command}` within README.md's first 60 lines (found at {at:?})"
        );
    }
}

#[test]
fn the_anchor_of_a_heading_is_githubs() {
    assert_eq!(anchor(" What can go wrong"), "what-can-go-wrong");
    assert_eq!(
        anchor(" `flatback watch`: the floor in a terminal"),
        "flatback-watch-the-floor-in-a-terminal"
    );
}
