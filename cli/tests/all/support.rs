//! Helpers every test area uses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use runretry::Case;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// That example, parsed.
pub fn example_case(prefix: &str) -> Case {
    Case::from_json(prefix, &example_text(prefix)).unwrap()
}

pub use runretry_test_guests::{cache_entries, example, example_policy, example_text, variant};

/// Poll `check` until it holds, for at most 60 s (then fail, saying what never happened). For
/// events that follow an action at their own pace (a file watcher, a signal), not for timing.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(std::time::Instant::now() < until, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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

/// `runretry ARGS` with `stdin` on its standard input (the cache off); fails the test if it
/// panicked.
pub fn runretry(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(args)
        .env("RUNRETRY_CACHE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run runretry");
    let mut pipe = child.stdin.take().unwrap();
    // A command refused before it reads its input (a bad argument) may have closed the pipe.
    if let Err(error) = pipe.write_all(stdin.as_bytes()) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "writing runretry's stdin: {error}");
    }
    drop(pipe);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "runretry panicked: {stderr}");
    output
}

/// Its stdout as JSON (the test fails, showing it, when it is not).
pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

/// Its stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
