//! The compile cache: compiled components on disk, so the CLI never compiles the same component
//! twice (0.2 s for the default policy, 10-20 s for a Python or JavaScript guest).
//!
//! An entry is named by SHA-256 of the component's bytes and the engine's compatibility hash
//! (wasmtime version and every setting that affects code generation), and ends with an
//! HMAC-SHA-256 of its contents under a random key kept in the cache dir (mode 0600). Loading
//! native code is only sound for artifacts wasmtime itself produced, so an entry whose tag does
//! not verify (not written by this cache, truncated, altered) is never deserialised: the
//! component is compiled again and the entry rewritten. Writes go to a temporary file renamed
//! into place, so a reader never sees half an entry.
//!
//! Size: the entries together stay under a cap ([`CompileCache::DEFAULT_MAX_BYTES`], or
//! [`CompileCache::with_max_bytes`]). After an entry is written, the entries used least recently
//! (by access time, which a load sets) are deleted until the rest fit: a server that accepts
//! uploads compiles every distinct candidate, ~2 MB each for a Rust policy.
//!
//! Trust: the tag only means something if nobody but the current user can write the entries or
//! read the key. So before the cache is used, [`CompileCache::open`] checks that the directory
//! is owned by the effective user and writable by nobody else, that every directory above it is
//! owned by that user or root and not writable by others (or sticky, like `/tmp`), so it cannot
//! be swapped, and that the key is a regular file (not a symbolic link) owned by the user and
//! private to them. Entries are opened without following symbolic links and checked the same
//! way on the open file, so there is no window between check and read. Anything else and the
//! cache is refused ([`CacheRefusal`]); the caller compiles in memory. On platforms without
//! Unix ownership the cache is always refused, as that cannot be checked there.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::hex::hex;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 32;
const KEY_LEN: usize = 32;
const KEY_FILE: &str = CompileCache::KEY_FILE;

/// A cache directory and its key, both checked to be the current user's alone.
#[derive(Clone)]
pub struct CompileCache {
    /// Canonical: resolved once, so a symbolic link changed later cannot redirect the cache.
    dir: PathBuf,
    key: [u8; KEY_LEN],
    /// The entries' size together, in bytes (see the module's doc).
    max_bytes: u64,
}

/// Why a cache directory is not used: the offending path (the directory, a directory above it,
/// or the key) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRefusal {
    path: PathBuf,
    reason: String,
}

impl CacheRefusal {
    fn new(path: &Path, reason: impl Into<String>) -> Self {
        CacheRefusal { path: path.to_path_buf(), reason: reason.into() }
    }

    /// The path found wanting.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong with it, e.g. "is writable by group or others (mode 0775)".
    #[cfg(test)]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for CacheRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compile cache not used: {} {}; compiling in memory", self.path.display(), self.reason)
    }
}

impl std::error::Error for CacheRefusal {}

impl CompileCache {
    /// The key's file name inside the cache directory.
    pub const KEY_FILE: &'static str = "hmac.key";

    /// The default cap on the entries' size together: 256 MiB, a hundred Rust policies or ten
    /// Python or JavaScript guests, while a stream of distinct uploads cannot fill the disk.
    pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

    /// Open (creating if needed, mode 0700) the cache at `dir`, after checking that only the
    /// current user can write it or read its key, capped at [`Self::DEFAULT_MAX_BYTES`]. On
    /// refusal callers compile without a cache; the refusal says which path is wrong and why.
    pub fn open(dir: &Path) -> Result<Self, CacheRefusal> {
        let dir = trusted_dir(dir)?;
        let key = load_key(&dir)?;
        Ok(CompileCache { dir, key, max_bytes: Self::DEFAULT_MAX_BYTES })
    }

    /// The same cache, its entries kept under `max_bytes` together; an entry larger than that
    /// is not written at all.
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        CompileCache { max_bytes, ..self }
    }

    /// The compiled component for `bytes`: from the cache when a verified entry exists,
    /// otherwise from `compile`, then stored (a failure to store only costs the next run time).
    pub fn load_or_compile<E>(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> Result<Component, E>,
    ) -> Result<Component, E> {
        let path = self.entry_path(engine, bytes);
        match self.load(engine, &path) {
            Ok(Some(component)) => return Ok(component),
            Ok(None) => {}
            // Only this user (or root) can have put it there, but it is still not loaded.
            Err(reason) => {
                tracing::warn!("compile cache entry not used: {} {reason}; compiling it again", path.display())
            }
        }
        let component = compile()?;
        if let Ok(serialized) = component.serialize() {
            if (serialized.len() + TAG_LEN) as u64 <= self.max_bytes && self.store(&path, &serialized).is_ok() {
                self.evict_beyond_cap(&path);
            }
        }
        Ok(component)
    }

    /// Where the entry for `bytes` compiled by `engine` lives.
    pub fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        self.dir.join(Self::entry_name(engine, bytes))
    }

    /// The file name of the entry for `bytes` compiled by `engine`, in any cache directory.
    pub fn entry_name(engine: &Engine, bytes: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(bytes);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{}.cwasm", hex(&hasher.0.finalize()))
    }

    /// `Ok(None)`: no usable entry (missing, or its tag does not verify). `Err`: an entry that
    /// is not a private regular file of this user, worth a warning.
    fn load(&self, engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
        let Some(mut file) = open_owned_file(path, 0o022)? else {
            return Ok(None);
        };
        let mut data = Vec::new();
        if file.read_to_end(&mut data).is_err() || data.len() < TAG_LEN {
            return Ok(None);
        }
        let (body, tag) = data.split_at(data.len() - TAG_LEN);
        if !verify(&self.key, body, tag) {
            return Ok(None);
        }
        // Used now: the last to be evicted. The access time, not the modification time, so a
        // verified entry is never rewritten (relatime mounts would not record reads by themselves).
        let _ = file.set_times(std::fs::FileTimes::new().set_accessed(SystemTime::now()));
        // SAFETY: `body` is exactly what `Component::serialize` produced for this engine's
        // configuration: the tag verifies under this cache's key, which only the current user
        // can read and only `store` uses; the entry is a regular file of this user in a
        // directory only this user (or root) can write; and its name covers the engine's
        // compatibility hash.
        Ok(unsafe { Component::deserialize(engine, body) }.ok())
    }

    /// Delete the entries used least recently until the rest fit under the cap, never `keep`
    /// (the entry just written). Another process may evict or write at the same time: a file
    /// gone already is skipped, and the cap holds again after the next write.
    fn evict_beyond_cap(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                Some((meta.accessed().or_else(|_| meta.modified()).ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }

    fn store(&self, path: &Path, serialized: &[u8]) -> std::io::Result<()> {
        let tag = tag(&self.key, serialized);
        let tmp = write_temp(&self.dir, &[serialized, &tag])?;
        // rename replaces whatever is at `path`, a symbolic link included, without following it.
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// Create `dir` if needed and check it and every directory above it; returns its canonical
/// path, which later accesses use so that no symbolic link is resolved again.
#[cfg(unix)]
fn trusted_dir(dir: &Path) -> Result<PathBuf, CacheRefusal> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CacheRefusal::new(dir, format!("cannot be created: {e}")))?;
    let canonical = dir.canonicalize().map_err(|e| CacheRefusal::new(dir, format!("cannot be resolved: {e}")))?;
    let meta = metadata(&canonical)?;
    if !meta.is_dir() {
        return Err(CacheRefusal::new(&canonical, "is not a directory"));
    }
    owned_by_user(&meta)
        .and_then(|()| check_mode(&meta, 0o022))
        .map_err(|reason| CacheRefusal::new(&canonical, reason))?;
    // Whoever can rename entries of a directory above could swap in a cache of their own.
    for ancestor in canonical.ancestors().skip(1) {
        let meta = metadata(ancestor)?;
        if meta.uid() != 0 && meta.uid() != euid() {
            return Err(CacheRefusal::new(
                ancestor,
                format!(
                    "is owned by uid {}, neither root nor the current user (uid {}), and holds the cache directory {}",
                    meta.uid(),
                    euid(),
                    canonical.display()
                ),
            ));
        }
        if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            return Err(CacheRefusal::new(
                ancestor,
                format!(
                    "is writable by group or others and not sticky (mode {}), and holds the cache directory {}",
                    mode(&meta),
                    canonical.display()
                ),
            ));
        }
    }
    Ok(canonical)
}

/// Ownership cannot be checked here, so the safe choice: never load native code from disk.
#[cfg(not(unix))]
fn trusted_dir(dir: &Path) -> Result<PathBuf, CacheRefusal> {
    Err(CacheRefusal::new(dir, "cannot be checked for ownership on this platform"))
}

#[cfg(unix)]
fn metadata(path: &Path) -> Result<std::fs::Metadata, CacheRefusal> {
    std::fs::symlink_metadata(path).map_err(|e| CacheRefusal::new(path, format!("cannot be inspected: {e}")))
}

/// The key in `dir`, created if missing or malformed.
fn load_key(dir: &Path) -> Result<[u8; KEY_LEN], CacheRefusal> {
    let path = dir.join(KEY_FILE);
    // Twice: another process may create the key between our read and our create.
    for _ in 0..2 {
        let file = open_owned_file(&path, 0o077).map_err(|reason| CacheRefusal::new(&path, reason))?;
        let Some(file) = file else {
            match create_key(dir, &path, false)? {
                Some(key) => return Ok(key),
                None => continue,
            }
        };
        let mut bytes = Vec::with_capacity(KEY_LEN + 1);
        file.take(KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CacheRefusal::new(&path, format!("cannot be read: {e}")))?;
        return match <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
            Ok(key) => Ok(key),
            // Ours and private but not a key (truncated, ...): entries tagged with it are lost.
            Err(_) => Ok(create_key(dir, &path, true)?.expect("a replacing install always installs")),
        };
    }
    Err(CacheRefusal::new(&path, "keeps disappearing while being read"))
}

/// A new random key, installed at `path` (mode 0600) whole or not at all. Without `replace`,
/// `None` when another process installed one first.
fn create_key(dir: &Path, path: &Path, replace: bool) -> Result<Option<[u8; KEY_LEN]>, CacheRefusal> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| CacheRefusal::new(path, format!("cannot be generated: {e}")))?;
    let cannot_write = |e: std::io::Error| CacheRefusal::new(path, format!("cannot be written: {e}"));
    let tmp = write_temp(dir, &[&key]).map_err(cannot_write)?;
    let installed = if replace {
        std::fs::rename(&tmp, path).map(|()| true)
    } else {
        // A hard link never replaces an existing key, so racing processes agree on one key.
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            // File systems without hard links: last writer wins; entries tagged with a losing
            // key fail verification once and are rewritten.
            Err(_) => std::fs::rename(&tmp, path).map(|()| true),
        }
    };
    let _ = std::fs::remove_file(&tmp);
    Ok(installed.map_err(cannot_write)?.then_some(key))
}

/// Open `path` for reading without following a symbolic link, then check the open file (so
/// nothing can be swapped in between): a regular file owned by the current user, with none of
/// the `forbidden` permission bits. `Ok(None)` when there is no such file.
fn open_owned_file(path: &Path, forbidden: u32) -> Result<Option<File>, String> {
    let mut options = OpenOptions::new();
    options.read(true);
    // NONBLOCK: opening a FIFO planted under the name must not hang.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // ELOOP on Linux, EMLINK or EFTYPE elsewhere: ask the file system instead.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err("is a symbolic link".into());
            }
            return Err(format!("cannot be opened: {e}"));
        }
    };
    let meta = file.metadata().map_err(|e| format!("cannot be inspected: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    owned_by_user(&meta)?;
    check_mode(&meta, forbidden)?;
    Ok(Some(file))
}

#[cfg(unix)]
fn owned_by_user(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != euid() {
        return Err(format!("is owned by uid {}, not by the current user (uid {})", meta.uid(), euid()));
    }
    Ok(())
}

#[cfg(unix)]
fn check_mode(meta: &std::fs::Metadata, forbidden: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.mode() & forbidden == 0 {
        return Ok(());
    }
    let what = if forbidden & 0o044 != 0 { "accessible" } else { "writable" };
    Err(format!("is {what} by group or others (mode {})", mode(meta)))
}

#[cfg(not(unix))]
fn owned_by_user(_: &std::fs::Metadata) -> Result<(), String> {
    Err("cannot be checked for ownership on this platform".into())
}

#[cfg(not(unix))]
fn check_mode(_: &std::fs::Metadata, _: u32) -> Result<(), String> {
    Err("cannot be checked for permissions on this platform".into())
}

#[cfg(unix)]
fn mode(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{:04o}", meta.mode() & 0o7777)
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Write `parts` to a new file in `dir` (mode 0600, never an existing file or link), for a
/// rename or link into place.
fn write_temp(dir: &Path, parts: &[&[u8]]) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Random too: a file left by a crashed process whose pid is reused must not block writes.
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let tmp = dir.join(format!(".tmp.{}.{n}.{}", std::process::id(), hex(&random)));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    let written = parts.iter().try_for_each(|part| file.write_all(part));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

fn mac(key: &[u8], message: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// HMAC-SHA-256 of `message`.
fn tag(key: &[u8], message: &[u8]) -> [u8; TAG_LEN] {
    mac(key, message).finalize().into_bytes().into()
}

/// Whether `tag` is the HMAC-SHA-256 of `message`, compared in constant time.
fn verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    tag.len() == TAG_LEN && mac(key, message).verify_slice(tag).is_ok()
}

/// Feeds `Hash` output into SHA-256 (the compatibility hash is only `impl Hash`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is used")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_vectors() {
        // RFC 4231, test case 1: a 20-byte key of 0x0b and "Hi There".
        assert_eq!(
            hex(&tag(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // RFC 4231, test case 2: a key shorter than the block, "Jefe".
        assert_eq!(
            hex(&tag(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The cache's own key size: a 32-byte key of 0x0b (computed with Python's hmac).
        let tag = tag(&[0x0b; 32], b"Hi There");
        assert_eq!(hex(&tag), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
        assert!(verify(&[0x0b; 32], b"Hi There", &tag));
    }

    #[test]
    fn a_tag_off_by_one_bit_or_length_does_not_verify() {
        let key = [7u8; KEY_LEN];
        let good = tag(&key, b"body");
        let mut flipped = good;
        flipped[TAG_LEN - 1] ^= 1;
        assert!(!verify(&key, b"body", &flipped));
        assert!(!verify(&key, b"body", &good[..TAG_LEN - 1]));
        assert!(!verify(&[8u8; KEY_LEN], b"body", &good));
    }
}

/// Reuse, and every refusal, through a real sandbox and planted entries.
#[cfg(test)]
mod trust_tests;
