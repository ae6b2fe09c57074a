//! `docs/ARCHITECTURE.md` stays true: every test it cites exists (as a test, in the file it names), every path it
//! names exists, its code map names every source file of the workspace, and claims known to have gone stale are
//! not made again.
//!
//! A citation is a backticked `path/to/file.rs::test_name`; the checker reads the cited file and looks for
//! `fn test_name` under a test attribute (`#[test]`, `#[tokio::test…]`, `proptest!`'s `#[test]`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Phrases that were true of an earlier version and must not come back unnoticed: each names something that
/// has since been written (or a way of checking the document that no longer applies).
const STALE: &[&str] = &[
    "not written yet",
    "disk full — not yet",
    "no eviction",
    "working tree",
    "not run for this document",
    "will drive it",
];

/// The fewest citations the document may hold: far fewer means a table was lost, not tidied.
const MIN_CITATIONS: usize = 100;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn architecture_md_cites_only_tests_and_paths_that_exist_and_maps_every_module() {
    let root = root();
    let doc = fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let sources = workspace_sources(&root);
    assert!(
        sources.len() > 30,
        "found only {} source files under {}",
        sources.len(),
        root.display()
    );
    let report = check(&doc, &|p| fs::read_to_string(root.join(p)).ok(), &sources);
    assert!(
        report.problems.is_empty(),
        "docs/ARCHITECTURE.md is out of step with the code:\n  {}",
        report.problems.join("\n  ")
    );
    assert!(
        report.citations >= MIN_CITATIONS,
        "only {} test citations (at least {MIN_CITATIONS} expected)",
        report.citations
    );
}

/// The checker itself: each rule fails on a document that breaks it.
#[test]
fn the_checker_refuses_a_missing_test_a_missing_path_an_unmapped_module_and_a_stale_claim() {
    let files = |p: &str| match p {
        "node/tests/a.rs" => Some("#[test]\nfn held() {}\nfn helper_not_a_test() {}\n".to_string()),
        "node/src/x.rs" => Some(String::new()),
        _ => None,
    };
    let sources: BTreeSet<String> = ["node/src/x.rs", "node/src/y/z.rs", "node/src/y/tests.rs"]
        .map(String::from)
        .into();
    let coarse = "## Code map\n`node/` and `node/src/`\n## Invariants\n";
    let r = check(coarse, &files, &sources);
    assert_eq!(
        r.problems.len(),
        2,
        "a crate directory maps nothing: {:?}",
        r.problems
    );
    let good =
        "## Code map\n`node/src/x.rs` and `node/src/y/`\n## Invariants\n`node/tests/a.rs::held`\n";
    let r = check(good, &files, &sources);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.citations, 1);

    let bad = "## Code map\n`node/src/x.rs`\n## Invariants\n`node/tests/a.rs::gone`, \
               `node/tests/a.rs::helper_not_a_test`, `node/tests/b.rs::held`, `node/src/nowhere.rs`, `a.rs::held`\n\
               this is not written yet\n";
    let r = check(bad, &files, &sources);
    let all = r.problems.join("\n");
    for expected in [
        "node/tests/a.rs::gone",
        "node/tests/a.rs::helper_not_a_test",
        "node/tests/b.rs::held",
        "node/src/nowhere.rs",
        "`a.rs::held`: name the file from the workspace root",
        "node/src/y/z.rs",
        "not written yet",
    ] {
        assert!(all.contains(expected), "{expected} not reported in:\n{all}");
    }
    assert!(
        !all.contains("tests.rs is not"),
        "a tests.rs file needs no entry: {all}"
    );
}

struct Report {
    problems: Vec<String>,
    citations: usize,
}

fn check(doc: &str, read: &dyn Fn(&str) -> Option<String>, sources: &BTreeSet<String>) -> Report {
    let mut problems = Vec::new();
    let mut citations = 0;
    for token in backticked(doc) {
        let file = token.split("::").next().unwrap_or(token);
        if file.ends_with(".rs") && !is_workspace_path(file) {
            problems.push(format!("`{token}`: name the file from the workspace root"));
            continue;
        }
        if let Some((path, name)) = token.rsplit_once("::") {
            if !path.ends_with(".rs") || !is_workspace_path(path) {
                continue;
            }
            citations += 1;
            match read(path) {
                None => problems.push(format!("`{token}`: {path} does not exist")),
                Some(text) if !has_test(&text, name) => {
                    problems.push(format!("`{token}`: no test named {name} in {path}"))
                }
                Some(_) => {}
            }
        } else if is_workspace_path(token)
            && read(token.trim_end_matches('/')).is_none()
            && !is_dir_listed(token, sources)
        {
            problems.push(format!("`{token}` does not exist"));
        }
    }
    let map = section(doc, "## Code map");
    let mapped: Vec<&str> = backticked(map).collect();
    for source in sources {
        if source.ends_with("/tests.rs") {
            continue;
        }
        // A directory entry covers its subtree, but a crate (`node/`) or its `src/` is too coarse to map anything.
        let covered = mapped.iter().any(|m| {
            *m == source
                || (m.ends_with('/')
                    && !m.ends_with("/src/")
                    && m.contains("/src/")
                    && source.starts_with(m))
        });
        if !covered {
            problems.push(format!("{source} is not in the code map"));
        }
    }
    for stale in STALE {
        if doc.contains(stale) {
            problems.push(format!("stale claim: \"{stale}\""));
        }
    }
    Report {
        problems,
        citations,
    }
}

/// Whether `token` is a directory some source file lives under (directories are not files `read` can open).
fn is_dir_listed(token: &str, sources: &BTreeSet<String>) -> bool {
    let dir = format!("{}/", token.trim_end_matches('/'));
    sources.iter().any(|s| s.starts_with(&dir)) || root().join(token).is_dir()
}

fn is_workspace_path(token: &str) -> bool {
    ["protocol/", "node/", "cli/", "testnet/", "docs/", ".ci/"]
        .iter()
        .any(|top| token.starts_with(top))
        && !token.contains(' ')
        && !token.contains('*')
}

fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The text from `heading` to the next heading of the same level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let Some(start) = doc.find(heading) else {
        return "";
    };
    let body = &doc[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    &body[..end]
}

/// `fn name` preceded (through attributes, comments and blank lines) by a test attribute.
fn has_test(text: &str, name: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let l = line.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        let l = l.strip_prefix("async ").unwrap_or(l);
        let Some(rest) = l.strip_prefix("fn ") else {
            return false;
        };
        if !rest.starts_with(name) || !rest[name.len()..].starts_with(['(', '<']) {
            return false;
        }
        lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| {
                l.starts_with("#[") || l.starts_with("//") || l.is_empty() || l.starts_with(')')
            })
            .any(|l| l.starts_with("#[test") || l.starts_with("#[tokio::test"))
    })
}

/// Every `.rs` file under a crate's `src/` (the files the code map must name).
fn workspace_sources(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for krate in ["protocol", "node", "cli", "testnet"] {
        walk(root, &root.join(krate).join("src"), &mut out);
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}
