//! Helpers every test area uses.

use std::path::{Path, PathBuf};

use runretry::Case;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of the spec example whose file name starts with `prefix` (`"01"`).
pub fn example(prefix: &str) -> String {
    let dir = repo().join("tests/conformance/examples");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no example {prefix}"));
    file.display().to_string()
}

/// The text of that example.
pub fn example_text(prefix: &str) -> String {
    std::fs::read_to_string(example(prefix)).unwrap()
}

/// That example, parsed.
pub fn example_case(prefix: &str) -> Case {
    Case::from_json(prefix, &example_text(prefix)).unwrap()
}

pub use runretry_test_guests::example_policy;

/// Poll `check` until it holds, for at most 60 s (then fail, saying what never happened). For
/// events that follow an action at their own pace (a file watcher, a signal), not for timing.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(std::time::Instant::now() < until, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
