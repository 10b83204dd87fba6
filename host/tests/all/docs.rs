//! The guide's code is included from the example files, not copied: each
//! `<!-- include: PATH#ANCHOR -->` marker in a doc must be followed by a code block equal to that
//! region of the file (`ANCHOR: name` ... `ANCHOR_END: name`, any comment style; no `#ANCHOR`
//! means the whole file). `RUNRETRY_BLESS=1 cargo test -p runretry --test all docs::` rewrites the
//! blocks from the files.

use crate::support::repo;

const DOCS: [&str; 2] = ["docs/writing-a-policy.md", "docs/deployment.md"];

/// The lines of `path` between the anchor's markers (markers of other anchors dropped).
fn region(path: &str, anchor: Option<&str>) -> String {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let is_marker = |line: &str| line.contains("ANCHOR: ") || line.contains("ANCHOR_END: ");
    let lines: Vec<&str> = match anchor {
        None => text.lines().filter(|l| !is_marker(l)).collect(),
        Some(name) => {
            let start = text
                .lines()
                .position(|l| l.trim_end().ends_with(&format!("ANCHOR: {name}")))
                .unwrap_or_else(|| panic!("{path}: no ANCHOR: {name}"));
            text.lines()
                .skip(start + 1)
                .take_while(|l| !l.trim_end().ends_with(&format!("ANCHOR_END: {name}")))
                .filter(|l| !is_marker(l))
                .collect()
        }
    };
    lines.join("\n") + "\n"
}

/// Rebuild a doc with every included block taken from its file.
fn expand(doc: &str) -> String {
    let mut out = String::new();
    let mut lines = doc.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(spec) = line.trim().strip_prefix("<!-- include: ").and_then(|r| r.strip_suffix(" -->")) else {
            continue;
        };
        let (path, anchor) = match spec.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (spec, None),
        };
        let fence = lines.next().unwrap_or_else(|| panic!("include of {spec} has no code block"));
        assert!(fence.starts_with("```"), "include of {spec} must be followed by a code block");
        out.push_str(fence);
        out.push('\n');
        for body in lines.by_ref() {
            if body.starts_with("```") {
                break;
            }
        }
        out.push_str(&region(path, anchor));
        out.push_str("```\n");
    }
    out
}

#[test]
fn guide_code_matches_the_example_files() {
    for doc in DOCS {
        let path = repo().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let expanded = expand(&text);
        if std::env::var_os("RUNRETRY_BLESS").is_some() {
            std::fs::write(&path, &expanded).unwrap();
            continue;
        }
        assert!(
            text == expanded,
            "{doc} has drifted from the files it includes; run RUNRETRY_BLESS=1 cargo test -p runretry --test all docs::"
        );
        assert!(text.contains("<!-- include: "), "{doc} includes nothing");
    }
}
