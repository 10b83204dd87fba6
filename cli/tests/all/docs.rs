//! The guide's code is included from the example files, not copied: each
//! `<!-- include: PATH#ANCHOR -->` marker in a doc must be followed by a code block equal to that
//! region of the file (`ANCHOR: name` ... `ANCHOR_END: name`, any comment style; no `#ANCHOR`
//! means the whole file). `RUNRETRY_BLESS=1 cargo test -p runretry-cli --test all docs::` rewrites the
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
            "{doc} has drifted from the files it includes; run RUNRETRY_BLESS=1 cargo test -p runretry-cli --test all docs::"
        );
        assert!(text.contains("<!-- include: "), "{doc} includes nothing");
    }
}

/// Which test runs each `<!-- run: NAME -->` block, by the file that holds the call.
const RUN_BY: [(&str, &str); 5] = [
    ("build-wheels", "python/tests/wheels.rs"),
    ("install", "python/tests/wheels.rs"),
    ("tour", "python/tests/wheels.rs"),
    ("cli-policy", "cli/tests/all/docs.rs"),
    ("storm-replay", "cli/tests/all/docs.rs"),
];

/// The code block of `doc` after `<!-- run: NAME -->`.
fn doc_block(doc: &str, name: &str) -> String {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let marker = format!("<!-- run: {name} -->");
    let after = text.split_once(&marker).unwrap_or_else(|| panic!("{doc} has no {marker}")).1;
    let block = after.trim_start().split_once('\n').unwrap().1;
    block.split_once("\n```").unwrap().0.to_string()
}

/// Every shell and Python block of the README and the docs is run by a test (`<!-- run: NAME
/// -->`, or `<!-- include: FILE -->`, a file the tests run), or says why not (`<!-- not run:
/// REASON -->`).
#[test]
fn every_shell_and_python_block_is_run_or_says_why_not() {
    let mut docs = vec![repo().join("README.md")];
    docs.extend(std::fs::read_dir(repo().join("docs")).unwrap().flatten().map(|e| e.path()));
    for path in docs.iter().filter(|p| p.extension().is_some_and(|x| x == "md")) {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !["```sh", "```bash", "```python", "```console"].contains(&line.trim_end()) {
                continue;
            }
            let above = lines[..i].iter().rev().find(|l| !l.trim().is_empty()).copied().unwrap_or("");
            let at = format!("{}:{}", path.display(), i + 1);
            if let Some(name) = above.strip_prefix("<!-- run: ").and_then(|r| r.strip_suffix(" -->")) {
                let (_, runner) =
                    RUN_BY.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{at}: no test runs {name:?}"));
                let source = std::fs::read_to_string(repo().join(runner)).unwrap();
                let called =
                    source.contains(&format!("block(\"{name}\")")) || source.contains(&format!("\", \"{name}\")"));
                assert!(called, "{at}: {runner} does not run {name:?}");
            } else {
                assert!(
                    above.starts_with("<!-- include: ") || above.starts_with("<!-- not run: "),
                    "{at}: a block no test runs must say why (<!-- not run: REASON -->)"
                );
            }
        }
    }
}

/// docs/cli.md's policy commands, as written: the backoff example policy from `runretry
/// example`, as a wheel user gets it.
#[test]
fn the_cli_guide_policy_commands_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_runretry")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", binary.display(), std::env::var("PATH").unwrap_or_default());
    let output = std::process::Command::new("bash")
        .args(["-e", "-c", &doc_block("docs/cli.md", "cli-policy")])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("RUNRETRY_CACHE", "off")
        .env("case", crate::support::example("01"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("delay_seconds") && stdout.contains("contract"), "{stdout}");
}

/// README's replay of a retry storm, as written (the circuit-breaker example policy from
/// `runretry example`).
#[test]
fn the_readme_storm_replay_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests/replay")).unwrap();
    std::fs::copy(repo().join("tests/replay/storm-cases.jsonl"), dir.path().join("tests/replay/storm-cases.jsonl"))
        .unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_runretry")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", binary.display(), std::env::var("PATH").unwrap_or_default());
    let output = std::process::Command::new("bash")
        .args(["-e", "-c", &doc_block("README.md", "storm-replay")])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("RUNRETRY_CACHE", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("storm: 2 of 8 changed, 2 runs avoided"), "{stdout}");
}

/// README's count of the default suite is the suite's.
#[test]
fn the_readme_counts_the_default_suite_right() {
    let cases = runretry_kit::conformance::load_cases(&repo().join("tests/conformance")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let claim = format!("the default suite: {} cases", cases.len());
    assert!(readme.contains(&claim), "README.md should say {claim:?}");
}

/// Issue #30, finding 7: two documents were linked from nowhere. `docs/README.md`, the index by
/// reader, links every document under `docs/`.
#[test]
fn the_docs_index_links_every_document() {
    let index = std::fs::read_to_string(repo().join("docs/README.md")).unwrap();
    for entry in std::fs::read_dir(repo().join("docs")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "README.md" {
            assert!(index.contains(&format!("]({name})")), "docs/README.md does not link {name}");
        }
    }
}

/// Issue #30, finding 3: the six limits were spelt in five places. The stubs' `SandboxLimits`
/// lists the core's knobs (name, help and default, as `--help` shows them), then `cache_dir` and
/// `trusted_keys`.
#[test]
fn the_stubs_list_every_limit_the_core_declares() {
    let stubs = std::fs::read_to_string(repo().join("python/runretry/_runretry.pyi")).unwrap();
    let body: Vec<&str> = stubs
        .lines()
        .skip_while(|line| !line.starts_with("class SandboxLimits("))
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(str::trim)
        .collect();
    // `name: type` then its one-line docstring.
    let fields: Vec<(&str, &str)> = body
        .windows(2)
        .filter_map(|pair| Some((pair[0].split_once(": ")?.0, pair[1].strip_prefix("\"\"\"")?.strip_suffix("\"\"\"")?)))
        .collect();
    let mut expected: Vec<(String, String)> = runretry::LIMIT_KNOBS
        .iter()
        .map(|knob| (knob.name.to_string(), format!("{} Default {}.", knob.help, knob.default_value())))
        .collect();
    expected.push(("cache_dir".into(), "Where compiled components are cached; ``False`` for no cache.".into()));
    expected.push((
        "trusted_keys".into(),
        "Public key files (``runretry keygen``): only a policy signed by one of them loads.".into(),
    ));
    let found: Vec<(String, String)> = fields.iter().map(|(n, d)| (n.to_string(), d.to_string())).collect();
    assert_eq!(found, expected, "python/runretry/_runretry.pyi, class SandboxLimits");
    // Every entry point takes them all, by that one declaration.
    assert_eq!(stubs.matches("**limits: Unpack[SandboxLimits]").count(), 3);
    assert!(!stubs.contains("deadline_ms: int | None = None"), "a limit spelt again in a signature");
}
