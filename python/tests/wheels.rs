//! Install without a Rust toolchain: the two wheels `scripts/build-wheels.sh` makes are installed
//! into a fresh virtualenv whose PATH has no `cargo`, `rustc` or `rustup`, and used there as a
//! Dagster team would: the README's install commands as written, a decision through the command
//! line and through `runretry.Policy`, an example policy component loaded, and one Dagster
//! scenario with the sensor in enforce mode against a live daemon.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::{crate_dir, run, venv};
use runretry_test_guests::example_policy;

fn repo() -> PathBuf {
    crate_dir().join("..")
}

/// PATH without any directory holding a Rust toolchain, with `first` in front.
fn path_without_rust(first: &Path) -> String {
    let system = std::env::var("PATH").unwrap_or_default();
    let kept = system
        .split(':')
        .filter(|dir| ["cargo", "rustc", "rustup"].iter().all(|tool| !Path::new(dir).join(tool).exists()));
    std::iter::once(first.display().to_string()).chain(kept.map(String::from)).collect::<Vec<_>>().join(":")
}

/// The shell block of README.md that follows `<!-- run: NAME -->`.
fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- run: {name} -->");
    let after = readme.split_once(&marker).unwrap_or_else(|| panic!("README.md has no {marker}")).1;
    let block = after.trim_start().strip_prefix("```sh\n").expect("a ```sh block after the marker");
    block.split_once("\n```").unwrap().0.to_string()
}

#[test]
fn the_wheels_install_and_work_without_a_rust_toolchain() {
    let build_venv = venv();
    let build_path = format!("{}:{}", build_venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    // Built as the README says, with maturin from the pinned test virtualenv.
    let built = Instant::now();
    println!(
        "{}",
        run(
            "building the wheels",
            Command::new("bash")
                .args(["-c", &readme_block("build-wheels")])
                .current_dir(repo())
                .env("PATH", &build_path)
        )
    );
    println!("wheels built in {:.0?}", built.elapsed());
    for wheel in std::fs::read_dir(repo().join("target/wheels")).unwrap().flatten() {
        println!(
            "{}: {:.1} MiB",
            wheel.file_name().to_string_lossy(),
            wheel.metadata().unwrap().len() as f64 / 1048576.0
        );
        // What pip on an older Linux checks: the glibc symbols the binaries need, not the name.
        let audit = run(
            "auditwheel show",
            Command::new(build_venv.join("bin/auditwheel")).arg("show").arg(wheel.path()).env("PATH", &build_path),
        );
        println!("{audit}");
        // auditwheel wraps its text; compared with the line breaks as spaces.
        let words = audit.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("is consistent with the following platform tag: \"manylinux_2_17_x86_64\""),
            "{}: {audit}",
            wheel.file_name().to_string_lossy()
        );
    }

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wheels");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fresh = dir.join("venv");
    run("creating a fresh virtualenv", Command::new("python3").args(["-m", "venv"]).arg(&fresh));
    let bin = fresh.join("bin");
    let path = path_without_rust(&bin);
    // An empty compile cache, as a new user has: the first decision compiles the default policy.
    let cache = dir.join("cache");
    let sh = |what: &str, script: &str| {
        run(
            what,
            Command::new("bash")
                .args(["-c", script])
                .current_dir(repo())
                .env("PATH", &path)
                .env("RUNRETRY_CACHE_DIR", &cache)
                .env("VIRTUAL_ENV", &fresh)
                .env_remove("CARGO_HOME")
                .env_remove("RUSTUP_HOME"),
        )
    };
    sh("no Rust toolchain on this PATH", "! command -v cargo && ! command -v rustc && ! command -v rustup");
    // Dagster and pytest first (they come from PyPI either way), so what is timed is ours.
    sh(
        "installing dagster and pytest",
        "pip install --quiet --disable-pip-version-check dagster==1.13.29 pytest==9.2.0",
    );
    let started = Instant::now();
    let first = sh("the README's install commands", &readme_block("install"));
    println!(
        "{first}\nfrom pip install of the wheels to the first decision, on an empty compile cache: {:.1?}",
        started.elapsed()
    );
    assert!(first.contains("\"action\": \"LAUNCH_NEW\""), "{first}");
    let again = Instant::now();
    sh("the README's install commands again", &readme_block("install"));
    println!("the same commands again, the wheels installed and the cache warm: {:.1?}", again.elapsed());
    // The tour, as written, on the files it names.
    let tour = sh("the README's tour", &readme_block("tour"));
    assert!(tour.contains("FROM_FAILURE"), "{tour}");

    // The package is the installed wheel, not this checkout's source.
    let python = r#"
import json, sys, runretry
assert runretry.__file__.startswith(sys.prefix), runretry.__file__
case = open(sys.argv[1]).read()
print(json.dumps(runretry.Policy.default().decide(case)))
print(runretry.Policy.load(sys.argv[2]).decide(case)["delay_seconds"])
"#;
    let example = repo().join("tests/conformance/examples/01-failed-run-no-tags-instance-default-2.json");
    // The example policy as a wheel user gets it: written by the installed command.
    let backoff = dir.join("backoff_policy.wasm");
    run(
        "writing an example policy",
        Command::new(bin.join("runretry")).args(["example", "backoff", "-o"]).arg(&backoff).env("PATH", &path),
    );
    // The wheel's command built its own copy of the example (in the zig build's target dir, so
    // with other symbol hashes): the same policy, shown by its decisions on every example case.
    let sandbox = runretry::Sandbox::new(runretry::SandboxConfig { cache_dir: None, ..Default::default() }).unwrap();
    let written = sandbox.load_file(&backoff).unwrap();
    let built = sandbox.load_file(Path::new(example_policy("backoff_policy"))).unwrap();
    for case in std::fs::read_dir(repo().join("tests/conformance/examples")).unwrap().flatten() {
        let text = std::fs::read_to_string(case.path()).unwrap();
        let case = runretry::Case::from_json(&case.path().display().to_string(), &text).unwrap();
        assert_eq!(written.decide(&case).unwrap(), built.decide(&case).unwrap(), "{}", case.run.run_id);
    }
    let out = run(
        "deciding in Python",
        Command::new(bin.join("python"))
            .args(["-c", python])
            .arg(&example)
            .arg(&backoff)
            .current_dir(&dir)
            .env("PATH", &path),
    );
    assert!(out.contains("LAUNCH_NEW"), "{out}");
    let cli = run(
        "deciding with an example policy",
        Command::new(bin.join("runretry"))
            .args(["decide", "--policy"])
            .arg(&backoff)
            .arg(&example)
            .current_dir(&dir)
            .env("PATH", &path),
    );
    assert!(cli.contains("delay_seconds"), "{cli}");

    // One Dagster scenario, enforce mode, against a daemon started from the fresh environment:
    // the e2e suite copied out of the checkout, so only the installed package can be imported.
    let suite = dir.join("e2e");
    std::fs::create_dir_all(&suite).unwrap();
    for file in ["conftest.py", "defs.py", "test_dagster.py"] {
        std::fs::copy(crate_dir().join("tests/e2e").join(file), suite.join(file)).unwrap();
    }
    let out = run(
        "the enforce scenario",
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "test_enforce_retries_the_op_that_raises"])
            .current_dir(&suite)
            .env("PATH", &path)
            .env("RUNRETRY_E2E_BACKOFF_POLICY", &backoff)
            .env("RUNRETRY_E2E_HOSTILE_POLICY", runretry_test_guests::hostile("panic")),
    );
    println!("{out}");
    assert!(out.contains("1 passed"), "{out}");
}
