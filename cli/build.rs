//! Builds the Rust example policies of `examples/` for wasm32-wasip2 and embeds them, so
//! `runretry example NAME -o FILE` gives a wheel user the policies the docs use (as the default
//! policy is embedded in the core).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use runretry_guest_build::{guest_target_dir, GuestBuild};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let examples = root.join("examples");
    println!("cargo:rerun-if-changed={}", examples.display());
    // The test guests' target dir: the tests build the same examples, so they compile once.
    let target_dir = guest_target_dir(&out_dir, "test-guests");
    let mut code = String::from("&[\n");
    for example in rust_examples(&examples) {
        let manifest_path = example.join("Cargo.toml");
        println!("cargo:rerun-if-changed={}", manifest_path.display());
        let manifest: toml::Table = std::fs::read_to_string(&manifest_path).unwrap().parse().unwrap();
        let crate_name = manifest["package"]["name"].as_str().unwrap();
        let description = manifest["package"]["description"].as_str().unwrap_or_else(|| {
            panic!("{}: an example needs a description (`runretry example --list` shows it)", manifest_path.display())
        });
        let built = GuestBuild::new(&manifest_path, target_dir.clone()).run(&format!("example {crate_name}"));
        let wasm = out_dir.join(format!("example-{crate_name}.wasm"));
        std::fs::copy(built.join(format!("{}.wasm", crate_name.replace('-', "_"))), &wasm).unwrap();
        let name = crate_name.strip_suffix("-policy").unwrap_or(crate_name);
        writeln!(code, "    ({name:?}, {description:?}, include_bytes!({:?})),", wasm.display().to_string()).unwrap();
    }
    code.push(']');
    std::fs::write(out_dir.join("examples.rs"), code).unwrap();
}

/// The example directories with a Cargo manifest (the Rust ones), sorted.
fn rust_examples(examples: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| dir.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}
