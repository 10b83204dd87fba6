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

/// `component` with a custom section carrying `n` appended: the same policy under other bytes
/// (another SHA-256, another compile-cache entry), as a stream of distinct uploads would be.
pub fn variant(component: &[u8], n: u64) -> Vec<u8> {
    let name = b"runretry-test-variant";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&n.to_le_bytes());
    let mut bytes = component.to_vec();
    // Section id 0 (custom), then its size: under 128, so one LEB128 byte.
    bytes.extend_from_slice(&[0, section.len() as u8]);
    bytes.extend_from_slice(&section);
    bytes
}

/// The compiled entries (`*.cwasm`) in a compile-cache directory.
pub fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect()
        })
        .unwrap_or_default()
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap())
        .unwrap();
    kib / 1024.0
}
