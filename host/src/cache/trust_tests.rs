//! The compile cache: reused across sandboxes, never trusting an entry it did not write, and not
//! used at all unless nobody but the current user could have written it.
//!
//! The planted-cache tests plant what an attacker would: the compiled `wrong-max-retries` guest
//! under the default policy's entry name, with a valid tag under a key the attacker chose. Were
//! it deserialised, the default policy would decide like the wrong guest, so a correct decision
//! shows it was not loaded (`a_planted_entry_under_the_cache_key_is_loaded` shows the planting
//! itself works).

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use runretry_test_guests::{cache_entries, example_text, variant};

use super::CompileCache;
use crate::{Case, Sandbox, SandboxConfig, DEFAULT_POLICY_WASM};
use sha2::Sha256;

fn sandbox(dir: &Path) -> Sandbox {
    Sandbox::new(SandboxConfig { cache_dir: Some(dir.to_path_buf()), ..SandboxConfig::default() }).unwrap()
}

fn uncached() -> Sandbox {
    Sandbox::new(SandboxConfig { cache_dir: None, ..SandboxConfig::default() }).unwrap()
}

fn decides(sandbox: &Sandbox) {
    let policy = sandbox.load_default().unwrap();
    assert!(policy.decide(&Case::from_json("01", &example_text("01")).unwrap()).unwrap().retry());
}

fn entry(dir: &Path, sandbox: &Sandbox) -> PathBuf {
    CompileCache::open(dir).unwrap().entry_path(sandbox.engine(), DEFAULT_POLICY_WASM)
}

/// Example 01 with `max_retries: 0` in the config and `dagster/max_retries: 3` on the run: the
/// default policy retries, the `wrong-max-retries` guest (which drops that tag) does not.
fn tag_driven_case() -> Case {
    let mut case: serde_json::Value = serde_json::from_str(&example_text("01")).unwrap();
    case["config"]["max_retries"] = 0.into();
    case["run"]["tags"] = serde_json::json!({ "dagster/max_retries": "3" });
    Case::from_json("tag-driven", &case.to_string()).unwrap()
}

/// Loads the default policy through `sandbox` and checks it decides as the default policy does.
fn decides_correctly(sandbox: &Sandbox) {
    let decision = sandbox.load_default().unwrap().decide(&tag_driven_case()).unwrap();
    assert!(decision.retry(), "the planted component was loaded in place of the default policy: {decision:?}");
}

/// What an attacker plants: the wrong guest compiled for this engine, tagged under `key`.
fn planted_entry(key: &[u8]) -> Vec<u8> {
    let wasm = std::fs::read(runretry_test_guests::WRONG_MAX_RETRIES).unwrap();
    let mut entry = wasmtime::component::Component::new(uncached().engine(), &wasm).unwrap().serialize().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(&entry);
    entry.extend_from_slice(&mac.finalize().into_bytes());
    entry
}

/// The default policy's entry name, whatever the directory.
fn entry_name() -> String {
    CompileCache::entry_name(uncached().engine(), DEFAULT_POLICY_WASM)
}

/// Every file in `dir` with its contents (and symbolic links with their targets), to show a
/// refused cache is left exactly as it was found.
fn snapshot(dir: &Path) -> Vec<(String, Result<Vec<u8>, PathBuf>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let content = match std::fs::read_link(&path) {
                Ok(target) => Err(target),
                Err(_) => Ok(std::fs::read(&path).unwrap()),
            };
            (name, content)
        })
        .collect();
    files.sort();
    files
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// Asserts the cache at `dir` is refused because of `path` with a reason containing `reason`,
/// that the default policy still decides correctly through a sandbox on it, and that nothing in
/// `dir` changed (the planted entry was neither used nor replaced).
fn assert_refused(dir: &Path, path: &Path, reason: &str) {
    let refusal = CompileCache::open(dir).err().expect("the planted cache must be refused");
    assert_eq!(refusal.path(), path, "{refusal}");
    assert!(refusal.reason().contains(reason), "{refusal}");
    let before = snapshot(dir);
    decides_correctly(&sandbox(dir));
    assert_eq!(snapshot(dir), before, "a refused cache is neither read nor written");
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
    for foreign in [b"not a compiled component at all, but long enough to hold a tag".to_vec(), genuine[..100].to_vec()]
    {
        std::fs::write(&path, &foreign).unwrap();
        decides(&sandbox(dir.path()));
        assert_eq!(std::fs::read(&path).unwrap(), genuine);
    }

    // A compiled component tagged under some other key.
    std::fs::write(&path, planted_entry(&[0x42; 32])).unwrap();
    decides_correctly(&sandbox(dir.path()));
    assert_eq!(std::fs::read(&path).unwrap(), genuine);
}

#[cfg(unix)]
#[test]
fn the_key_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("new/cache");
    CompileCache::open(&cache).unwrap();
    let mode = std::fs::metadata(cache.join(CompileCache::KEY_FILE)).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the cache key must not be readable by others: {mode:o}");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "a new cache directory is the user's alone: {mode:o}");
}

/// The control for the refusal tests: whoever holds the key can make the cache load their code,
/// which is why the key and the directory must be the current user's alone.
#[cfg(unix)]
#[test]
fn a_planted_entry_under_the_cache_key_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    CompileCache::open(dir.path()).unwrap();
    let key = std::fs::read(dir.path().join(CompileCache::KEY_FILE)).unwrap();
    write_private(&dir.path().join(entry_name()), &planted_entry(&key));
    let decision = sandbox(dir.path()).load_default().unwrap().decide(&tag_driven_case()).unwrap();
    assert!(!decision.retry(), "the planted entry should have been loaded: the planting tests would prove nothing");
}

#[cfg(unix)]
#[test]
fn a_directory_writable_by_group_or_others_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o770, 0o707, 0o777] {
        let dir = tempfile::tempdir().unwrap();
        // The attacker's key and an entry tagged with it, both looking like the user's own.
        let key = [0x42; 32];
        write_private(&dir.path().join(CompileCache::KEY_FILE), &key);
        write_private(&dir.path().join(entry_name()), &planted_entry(&key));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        assert_refused(dir.path(), &canonical, "is writable by group or others");
    }
}

/// A directory above the cache that others can write (and is not sticky, like /tmp) would let
/// them swap in a cache directory of their own.
#[cfg(unix)]
#[test]
fn a_directory_under_a_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    let key = [0x42; 32];
    std::fs::create_dir(&dir).unwrap();
    write_private(&dir.join(CompileCache::KEY_FILE), &key);
    write_private(&dir.join(entry_name()), &planted_entry(&key));
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(&dir, &parent.path().canonicalize().unwrap(), "is writable by group or others and not sticky");

    // Sticky, as /tmp is: others cannot rename what is not theirs, so the cache is trusted.
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    CompileCache::open(&dir).expect("a private directory in a sticky one is used");
}

/// A link to the cache directory is resolved once and its target judged (and used) instead.
#[cfg(unix)]
#[test]
fn a_symlinked_directory_is_judged_by_its_target() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let real = parent.path().join("real");
    let link = parent.path().join("link");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let cache = CompileCache::open(&link).unwrap();
    let real = real.canonicalize().unwrap();
    assert_eq!(cache.entry_path(uncached().engine(), DEFAULT_POLICY_WASM), real.join(entry_name()));

    let key = std::fs::read(real.join(CompileCache::KEY_FILE)).unwrap();
    write_private(&real.join(entry_name()), &planted_entry(&key));
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(&link, &real, "is writable by group or others");
}

#[cfg(unix)]
#[test]
fn a_key_owned_by_another_user_is_not_used() {
    if euid() != 0 {
        println!("skipped: creating a file owned by another uid needs root (running as uid {})", euid());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join(CompileCache::KEY_FILE);
    let key = [0x42; 32];
    write_private(&key_path, &key);
    std::os::unix::fs::chown(&key_path, Some(12345), None).unwrap();
    write_private(&dir.path().join(entry_name()), &planted_entry(&key));
    assert_refused(
        dir.path(),
        &dir.path().canonicalize().unwrap().join(CompileCache::KEY_FILE),
        "is owned by uid 12345",
    );
}

#[cfg(unix)]
#[test]
fn a_key_readable_by_others_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join(CompileCache::KEY_FILE);
    let key = [0x42; 32];
    write_private(&key_path, &key);
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private(&dir.path().join(entry_name()), &planted_entry(&key));
    assert_refused(
        dir.path(),
        &dir.path().canonicalize().unwrap().join(CompileCache::KEY_FILE),
        "is accessible by group or others",
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_key_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // The link's target passes every other check: the user's own, mode 0600.
    let target = elsewhere.path().join("key");
    let key = [0x42; 32];
    write_private(&target, &key);
    std::os::unix::fs::symlink(&target, dir.path().join(CompileCache::KEY_FILE)).unwrap();
    write_private(&dir.path().join(entry_name()), &planted_entry(&key));
    assert_refused(dir.path(), &dir.path().canonicalize().unwrap().join(CompileCache::KEY_FILE), "is a symbolic link");
    assert_eq!(std::fs::read(&target).unwrap(), key);
}

#[cfg(unix)]
#[test]
fn a_symlinked_entry_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    CompileCache::open(dir.path()).unwrap();
    // Tagged under the cache's own key: only the link stands between it and the loader.
    let key = std::fs::read(dir.path().join(CompileCache::KEY_FILE)).unwrap();
    let target = elsewhere.path().join("entry.cwasm");
    let planted = planted_entry(&key);
    write_private(&target, &planted);
    let path = dir.path().join(entry_name());
    std::os::unix::fs::symlink(&target, &path).unwrap();

    decides_correctly(&sandbox(dir.path()));
    // The link was replaced by a fresh entry, not followed, and its target left alone.
    assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), planted);
    decides_correctly(&sandbox(dir.path()));
}

#[cfg(unix)]
#[test]
fn an_entry_owned_by_another_user_is_not_loaded() {
    if euid() != 0 {
        println!("skipped: creating a file owned by another uid needs root (running as uid {})", euid());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    CompileCache::open(dir.path()).unwrap();
    let key = std::fs::read(dir.path().join(CompileCache::KEY_FILE)).unwrap();
    let path = dir.path().join(entry_name());
    write_private(&path, &planted_entry(&key));
    std::os::unix::fs::chown(&path, Some(12345), None).unwrap();

    decides_correctly(&sandbox(dir.path()));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0, "the foreign entry was replaced by the user's own");
}

/// Issue #31: every distinct component (a server's every upload) added an entry, without end.
/// The cache keeps under its size cap, deleting the entries used least recently.
#[test]
fn the_cache_keeps_under_its_size_cap_dropping_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let policies: Vec<Vec<u8>> = (0..4).map(|n| variant(DEFAULT_POLICY_WASM, n)).collect();
    // One entry's size, then a cap with room for two and a half.
    sandbox(dir.path()).load_bytes("v0", &policies[0]).unwrap();
    let entry_bytes = std::fs::metadata(&cache_entries(dir.path())[0]).unwrap().len();
    let cap = entry_bytes * 5 / 2;
    let capped = Sandbox::new(SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        cache_max_bytes: cap,
        ..SandboxConfig::default()
    })
    .unwrap();
    let entry_of = |n: usize| CompileCache::open(dir.path()).unwrap().entry_path(capped.engine(), &policies[n]);
    capped.load_bytes("v1", &policies[1]).unwrap();
    let size: u64 = cache_entries(dir.path()).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(size <= cap, "{size} bytes of entries, over the cap of {cap}");
    assert!(entry_of(1).exists() && entry_of(0).exists());
    // v0 is used again, so v1 is the least recently used when v2 needs room.
    capped.load_bytes("v0", &policies[0]).unwrap();
    capped.load_bytes("v2", &policies[2]).unwrap();
    assert!(entry_of(2).exists(), "the newest entry is kept");
    assert!(entry_of(0).exists(), "an entry just used is kept");
    assert!(!entry_of(1).exists(), "the least recently used entry is deleted");
    let size: u64 = cache_entries(dir.path()).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(size <= cap, "{size} bytes of entries, over the cap of {cap}");
    // An entry larger than the whole cap is not written (and evicts nothing).
    let tiny = Sandbox::new(SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        cache_max_bytes: 1,
        ..SandboxConfig::default()
    })
    .unwrap();
    tiny.load_bytes("v3", &policies[3]).unwrap();
    assert!(!entry_of(3).exists() && entry_of(2).exists());
}
