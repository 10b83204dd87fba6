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

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

const TAG_LEN: usize = 32;
const KEY_FILE: &str = "hmac.key";

/// A cache directory and its key.
#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl CompileCache {
    /// Open (creating if needed) the cache at `dir`. Fails when the directory or its key
    /// cannot be created or read; callers then compile without a cache.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key_path = dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(bytes) if bytes.len() == 32 => bytes.try_into().expect("32 bytes"),
            _ => create_key(&key_path)?,
        };
        Ok(CompileCache { dir: dir.to_path_buf(), key })
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
        if let Some(component) = self.load(engine, &path) {
            return Ok(component);
        }
        let component = compile()?;
        if let Ok(serialized) = component.serialize() {
            let _ = self.store(&path, &serialized);
        }
        Ok(component)
    }

    /// Where the entry for `bytes` compiled by `engine` lives.
    pub fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(bytes);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = hasher.0.finalize();
        self.dir.join(format!("{}.cwasm", hex(&digest)))
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let mut data = Vec::new();
        std::fs::File::open(path).ok()?.read_to_end(&mut data).ok()?;
        if data.len() < TAG_LEN {
            return None;
        }
        let (body, tag) = data.split_at(data.len() - TAG_LEN);
        if !constant_time_eq(&hmac(&self.key, body), tag) {
            return None;
        }
        // SAFETY: `body` is exactly what `Component::serialize` produced for this engine's
        // configuration: the entry's tag verifies under this cache's secret key, which only
        // `store` uses, and the entry name covers the engine's compatibility hash.
        unsafe { Component::deserialize(engine, body) }.ok()
    }

    fn store(&self, path: &Path, serialized: &[u8]) -> std::io::Result<()> {
        let tag = hmac(&self.key, serialized);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut contents = Vec::with_capacity(serialized.len() + TAG_LEN);
        contents.extend_from_slice(serialized);
        contents.extend_from_slice(&tag);
        std::fs::write(&tmp, &contents)?;
        std::fs::rename(&tmp, path)
    }
}

/// A new random key, readable by this user only.
fn create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&tmp)?.write_all(&key)?;
    }
    // Two processes racing here: the second rename wins, and entries tagged with the losing
    // key simply fail verification once and are rewritten.
    std::fs::rename(&tmp, path)?;
    Ok(key)
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut padded = [0u8; 64];
    padded[..32].copy_from_slice(key);
    let inner_pad: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&inner_pad).chain_update(message).finalize();
    Sha256::new().chain_update(&outer_pad).chain_update(inner).finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn hmac_matches_rfc_4231_style_vector() {
        // HMAC-SHA-256 with a 32-byte key of 0x0b and "Hi There" (computed with Python's hmac).
        let tag = hmac(&[0x0b; 32], b"Hi There");
        assert_eq!(hex(&tag), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
    }
}
