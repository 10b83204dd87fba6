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
