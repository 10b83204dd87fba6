//! The compile cache: reused across sandboxes, and never trusting an entry it did not write.

use runretry::cache::CompileCache;
use runretry::{Case, Sandbox, SandboxConfig, DEFAULT_POLICY_WASM};

fn sandbox(dir: &std::path::Path) -> Sandbox {
    Sandbox::new(SandboxConfig { cache_dir: Some(dir.to_path_buf()), ..SandboxConfig::default() }).unwrap()
}

fn decides(sandbox: &Sandbox) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/conformance/examples/01-failed-run-no-tags-instance-default-2.json"
    ))
    .unwrap();
    let policy = sandbox.load_default().unwrap();
    assert!(policy.decide(&Case::from_json("01", &text).unwrap()).unwrap().retry);
}

fn entry(dir: &std::path::Path, sandbox: &Sandbox) -> std::path::PathBuf {
    CompileCache::open(dir).unwrap().entry_path(sandbox.engine(), DEFAULT_POLICY_WASM)
}

#[test]
fn an_entry_is_written_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = sandbox(dir.path());
    decides(&first);
    let path = entry(dir.path(), &first);
    let written = std::fs::read(&path).expect("the first load writes an entry");
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let second = sandbox(dir.path());
    decides(&second);
    assert_eq!(std::fs::read(&path).unwrap(), written);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), modified, "a verified entry is not rewritten");
}

#[test]
fn foreign_or_altered_entries_are_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let first = sandbox(dir.path());
    decides(&first);
    let path = entry(dir.path(), &first);
    let genuine = std::fs::read(&path).unwrap();

    // One flipped byte in the compiled code: the tag no longer verifies.
    let mut altered = genuine.clone();
    altered[genuine.len() / 2] ^= 0x01;
    std::fs::write(&path, &altered).unwrap();
    decides(&sandbox(dir.path()));
    assert_eq!(std::fs::read(&path).unwrap(), genuine, "the altered entry was replaced by a fresh compile");

    // A file the cache did not write, and a truncated one.
    for foreign in [b"not a compiled component at all, but long enough to hold a tag".to_vec(), genuine[..100].to_vec()] {
        std::fs::write(&path, &foreign).unwrap();
        decides(&sandbox(dir.path()));
        assert_eq!(std::fs::read(&path).unwrap(), genuine);
    }
}

#[cfg(unix)]
#[test]
fn the_key_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    CompileCache::open(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join("hmac.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the cache key must not be readable by others: {mode:o}");
}
