//! Paths of the test and example guests, built from source by this crate's build script, and
//! `foreach_hostile!` / `foreach_example_policy!` to generate one test per guest; and the
//! helpers over them that the core's and the command line's tests share.

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component of the hostile guest built with `feature`.
pub fn hostile(feature: &str) -> &'static str {
    macro_rules! pick {
        ($name:ident, $path:expr) => {
            if stringify!($name) == feature {
                return $path;
            }
        };
    }
    foreach_hostile!(pick);
    panic!("no hostile guest {feature:?}: add the feature to tests/guests/hostile/Cargo.toml")
}

/// The component of the example policy `name` (`backoff_policy`: the crate name, `_` for `-`).
pub fn example_policy(name: &str) -> &'static str {
    macro_rules! pick {
        ($name:ident, $path:expr, [$($suite:expr),*], [$($ignored:expr),*]) => {
            if stringify!($name) == name {
                return $path;
            }
        };
    }
    foreach_example_policy!(pick);
    panic!("no example policy {name:?} in examples/")
}

/// The path of the spec example whose file name starts with `prefix` (`"01"`).
pub fn example(prefix: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/examples");
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
