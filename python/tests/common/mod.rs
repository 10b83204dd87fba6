//! What the Python test binaries share: the pinned virtualenv and running commands.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the virtualenv must hold; a venv made for another list is made again. An entry starting
/// with `--no-deps ` is installed after the others, without its dependencies.
///
/// dagster-postgres: the registry's newest, 0.29.27, pins dagster 1.13.27; it runs on 1.13.29
/// (Dagster warns of the library version mismatch), and the e2e tests show it does.
pub const REQUIREMENTS: &[&str] = &[
    "dagster==1.13.29",
    "pytest==9.2.0",
    "maturin==1.16.0",
    "psycopg2-binary==2.9.13",
    // The wheels' linker (maturin --zig, for the manylinux2014 tag) and their check.
    "ziglang==0.17.1",
    "auditwheel==6.8.2",
    "--no-deps dagster-postgres==0.29.27",
];

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `command`, failing the test with its output when it fails.
pub fn run(what: &str, command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

/// The virtualenv with the pinned Dagster packages, made once and reused while the pins are the
/// same.
#[allow(dead_code)] // not every test binary deploys Dagster
pub fn venv() -> PathBuf {
    venv_with("py-e2e", REQUIREMENTS)
}

/// A virtualenv under the target dir (`name/venv`) holding `requirements`, made once and reused
/// while they are the same.
pub fn venv_with(name: &str, requirements: &[&str]) -> PathBuf {
    // Tests of one binary run at once: one makes the virtualenv, the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let venv = dir.join("venv");
    let stamp = dir.join("requirements.txt");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::create_dir_all(&dir).unwrap();
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run("creating the virtualenv", Command::new(python).args(["-m", "venv"]).arg(&venv));
        let (without_deps, with_deps): (Vec<&str>, Vec<&str>) =
            requirements.iter().partition(|requirement| requirement.starts_with("--no-deps "));
        let pip = || {
            let mut pip = Command::new(venv.join("bin/pip"));
            pip.args(["install", "--quiet", "--disable-pip-version-check"]);
            pip
        };
        run("installing the pinned packages", pip().args(&with_deps));
        if !without_deps.is_empty() {
            let names = without_deps.iter().map(|requirement| requirement.trim_start_matches("--no-deps "));
            run("installing the pinned packages without their dependencies", pip().arg("--no-deps").args(names));
        }
        std::fs::write(&stamp, wanted).unwrap();
    }
    venv
}

/// `PATH` with the virtualenv's `bin` first.
#[allow(dead_code)] // not every test binary runs the virtualenv's commands
pub fn path_with(venv: &Path) -> String {
    format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default())
}

/// Build the `runretry` package with maturin into `venv` (with the workspace's dev profile, into
/// the shared target dir). Two at once collide in `target/maturin`: once per test process.
#[allow(dead_code)] // the wheels test installs the built wheels instead
pub fn maturin_develop(venv: &Path) {
    run(
        "building the package with maturin",
        Command::new(venv.join("bin/maturin"))
            .args(["develop", "--quiet"])
            .current_dir(crate_dir())
            .env("VIRTUAL_ENV", venv)
            .env("PATH", path_with(venv)),
    );
}

/// In `dir` (made afresh): the component at `policy` copied as `name` and signed (`name.sig`) by
/// the key of `trusted.pub`, and `other.pub`, a key that did not sign it. Returns `dir`.
#[allow(dead_code)] // the wheels test signs nothing
pub fn signed_copy(dir: &Path, policy: &str, name: &str) -> PathBuf {
    use runretry::signing;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let (secret, public) = signing::generate_key_pair().unwrap();
    let (_, other) = signing::generate_key_pair().unwrap();
    std::fs::write(dir.join("trusted.pub"), public).unwrap();
    std::fs::write(dir.join("other.pub"), other).unwrap();
    let component = std::fs::read(policy).unwrap();
    let copy = dir.join(name);
    std::fs::write(&copy, &component).unwrap();
    let line = signing::sign("trusted.key", &secret, &component).unwrap();
    std::fs::write(signing::signature_path(&copy), format!("{line}\n")).unwrap();
    dir.to_path_buf()
}
